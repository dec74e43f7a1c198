#!/usr/bin/env bash
# Regenerates the seed corpora tests/fuzz/corpus/{idx,job,h5} (small valid files, < 1 MB in all):
#   bash tests/fuzz/make_corpus.sh        (after 'make', from the repository root)
# idx: a tiny synthetic dataset (tests/tools/gen_idx.c), raw and gzip; job: the jobs/*.job files
# and the integration tests' job; h5: the project's writers (make_corpus.c), repacked with
# deflate (h5repack) so that a full-size model stays a few KB.
set -euo pipefail
cd "$(dirname "$0")/../.."
C=tests/fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p $C/idx $C/job $C/h5

cc -O2 -o "$T/gen_idx" tests/tools/gen_idx.c
"$T/gen_idx" "$T" 3 1 5
cp "$T/train-images-idx3-ubyte" $C/idx/images3
cp "$T/train-labels-idx1-ubyte" $C/idx/labels3
cp "$T/t10k-images-idx3-ubyte" $C/idx/images1
gzip -9 -n -c "$T/train-images-idx3-ubyte" >$C/idx/images3.gz
gzip -9 -n -c "$T/train-labels-idx1-ubyte" >$C/idx/labels3.gz

cp jobs/*.job $C/job/
sed -n '/^write_job()/,/^EOF/p' tests/tools/sweep_env.sh | sed '1,2d;$d' |
    sed -e 's/\$2/it/' -e 's/\${3:-1}/1/' -e 's|\$WORK|/tmp/fuzz|g' >$C/job/it.job

mpicc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude \
    $(pkg-config --cflags hdf5-openmpi) -o "$T/make_corpus" tests/fuzz/make_corpus.c \
    build/libds.a $(pkg-config --libs hdf5-openmpi openblas zlib inih) -lm -fopenmp
"$T/make_corpus" "$T"
for f in model ckpt soft attack; do
    h5repack -f SHUF -f GZIP=9 "$T/$f.h5" "$C/h5/$f.h5"
done
du -sh $C
