#!/usr/bin/env bash
# Downloads MNIST's four files into DEST (default data/mnist), checked against their MD5s.
#
#   scripts/get_mnist.sh [DEST]
#
# MNIST_MIRROR=URL (one or more base URLs, space-separated; file:// works) replaces the built-in
# mirrors. A file already present with the right MD5 is kept; a download goes to FILE.part and is
# renamed only once its MD5 matches, so an interrupted run never leaves a bad file in place.
set -euo pipefail

dest=${1:-data/mnist}
mirrors=${MNIST_MIRROR:-https://ossci-datasets.s3.amazonaws.com/mnist/ https://storage.googleapis.com/cvdf-datasets/mnist/ http://yann.lecun.com/exdb/mnist/}

# The published files' MD5s (the same on every mirror).
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
declare -A md5=(
    [train-images-idx3-ubyte.gz]=f68b3c2dcbeaaa9fbdd348bbdeb94873
    [train-labels-idx1-ubyte.gz]=d53e105ee54ea40749a09fcbcd1e9432
    [t10k-images-idx3-ubyte.gz]=9fb629c4189551a2d022fa330f9573f3
    [t10k-labels-idx1-ubyte.gz]=ec29112dd5afa0611ce80d1b7f02629c
)

say() { printf 'get_mnist.sh: %s\n' "$*" >&2; }

md5_of() {
    if command -v md5sum >/dev/null; then
        md5sum "$1" | cut -d' ' -f1
    else
        md5 -q "$1" # macOS
    fi
}

# fetch URL OUT: file:// by copying (wget has no file://), else curl or wget.
fetch() {
    case $1 in
    file://*) cat -- "${1#file://}" >"$2" ;;
    *)
        if command -v curl >/dev/null; then
            curl -fsSL --retry 2 --connect-timeout 20 --max-time 900 -o "$2" "$1"
        elif command -v wget >/dev/null; then
            wget -q --tries=3 --timeout=20 -O "$2" "$1"
        else
            say "neither curl nor wget is installed (apt-get install curl)"
            return 1
        fi
        ;;
    esac
}

give_up() {
    say "could not get $1 from any mirror (tried: $mirrors)"
    cat >&2 <<EOF
To get the data without this script, do one of:
  - copy the four files ${files[*]}
    by hand into $dest/ (then run this script again to check their MD5s; distill_sweep also
    reads them un-gzipped, without the .gz);
  - or set MNIST_DIR to a folder that already holds them;
  - or use Fashion-MNIST instead: apt-get install dataset-fashion-mnist, then choose the
    fashion-mnist dataset (distill_sweep finds /usr/share/datasets/fashion-mnist by itself).
EOF
    exit 1
}

part=
made=  # the folder, if this script created it: removed again when it stays empty (a failed
       # download leaves no empty data/mnist that looks like a dataset)
trap 'rm -f -- "$part"; [[ -n $made ]] && rmdir -- "$made" 2>/dev/null; true' EXIT

[[ -d $dest ]] || made=$dest
mkdir -p -- "$dest"
for f in "${files[@]}"; do
    out=$dest/$f
    if [[ -f $out ]]; then
        have=$(md5_of "$out")
        if [[ $have == "${md5[$f]}" ]]; then
            say "$out: present, MD5 ok"
            continue
        fi
        say "$out: present but MD5 $have, expected ${md5[$f]}; fetching it again"
    fi
    part=$out.part
    ok=0
    for m in $mirrors; do
        url=${m%/}/$f
        say "fetching $url"
        rm -f -- "$part"
        if ! fetch "$url" "$part"; then
            say "$url: download failed"
            continue
        fi
        got=$(md5_of "$part")
        if [[ $got != "${md5[$f]}" ]]; then
            say "$url: MD5 $got, expected ${md5[$f]}; trying the next mirror"
            continue
        fi
        mv -f -- "$part" "$out"
        ok=1
        break
    done
    [[ $ok == 1 ]] || give_up "$f"
done
part=
say "MNIST ready in $dest"
