// Writes a tiny synthetic MNIST-format dataset for the integration tests:
//   gen_idx DIR N_TRAIN N_TEST [SEED]
// creates DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte (raw IDX, 28x28 unsigned bytes).
// Class c is a bright stroke whose position and direction depend on c, on a noisy background,
// jittered per sample, so that the paper's network learns it in one short epoch.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state;
static uint32_t next(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(state >> 33);
}

static void be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

static void image(unsigned char *px, int c) {
    for (int i = 0; i < 784; i++) px[i] = (unsigned char)(next() % 40);
    int dx = (int)(next() % 3) - 1, dy = (int)(next() % 3) - 1;
    int bright = 180 + (int)(next() % 76);
    for (int k = 4; k < 24; k++) {
        int r, col;
        if (c < 5) { // horizontal strokes at five heights
            r = 4 + 4 * c + dy;
            col = k + dx;
        } else { // vertical strokes at five columns
            r = k + dy;
            col = 4 + 4 * (c - 5) + dx;
        }
        for (int w = 0; w < 2; w++) {
            int rr = c < 5 ? r + w : r, cc = c < 5 ? col : col + w;
            if (rr >= 0 && rr < 28 && cc >= 0 && cc < 28) px[rr * 28 + cc] = (unsigned char)bright;
        }
    }
}

static int write_split(const char *dir, const char *split, int n) {
    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte", dir, split);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", dir, split);
    FILE *fi = fopen(ip, "wb"), *fl = fopen(lp, "wb");
    if (!fi || !fl) {
        perror(!fi ? ip : lp);
        return 1;
    }
    be32(fi, 0x803);
    be32(fi, (uint32_t)n);
    be32(fi, 28);
    be32(fi, 28);
    be32(fl, 0x801);
    be32(fl, (uint32_t)n);
    unsigned char px[784];
    for (int i = 0; i < n; i++) {
        int c = (int)(next() % 10);
        image(px, c);
        fwrite(px, 1, 784, fi);
        unsigned char lab = (unsigned char)c;
        fwrite(&lab, 1, 1, fl);
    }
    int bad = ferror(fi) || ferror(fl);
    bad |= fclose(fi) != 0;
    bad |= fclose(fl) != 0;
    if (bad) fprintf(stderr, "gen_idx: write error in %s\n", dir);
    return bad;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: gen_idx DIR N_TRAIN N_TEST [SEED]\n");
        return 2;
    }
    state = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    int ntr = atoi(argv[2]), nte = atoi(argv[3]);
    if (ntr < 1 || nte < 1) return 2;
    return write_split(argv[1], "train", ntr) || write_split(argv[1], "t10k", nte);
}
