/* How the width of the vectors sets the time of Adafactor's `u` where the
 * divider is the limit: u = 1 / sqrt(max(r * c / s, e)) * g (per-row r,
 * per-column c, per-step s and e), 512 x 4096 f32 numbers, one core,
 * best of 30:
 *   - fused loops of 128-bit (the width of Cranelift's vectors, which the
 *     tensor executor's compiled blocks use), 256-bit and 512-bit vectors;
 *   - the same expression one operation at a time over tiles of 512
 *     numbers at 512 bits (as a block interpreter evaluates it);
 *   - the 128-bit loop with the division by s done as a product with its
 *     reciprocal in f64 (the same bits for normal quotients).
 * Build and run (x86-64 with AVX-512 F; gcc or clang):
 *     gcc -O2 tools/simd_width.c -o /tmp/simd_width && /tmp/simd_width
 * docs/matrices.md (Adafactor on an AVX-512 machine) cites what it printed. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define ROWS 512
#define COLS 4096
#define N (ROWS * COLS)
#define TILE 512
static float g[N], u[N], c[COLS], r[ROWS];
static float t1[TILE], t2[TILE], t3[TILE], t4[TILE];

/* The whole expression per vector of `W` lanes (`P` the intrinsics'
 * prefix: _mm, _mm256, _mm512). */
#define FUSED(NAME, TARGET, V, P, W)                                                \
    __attribute__((target(TARGET))) static void NAME(float s, float e) {            \
        for (int i = 0; i < ROWS; i++) {                                            \
            V ri = P##_set1_ps(r[i]), S = P##_set1_ps(s), E = P##_set1_ps(e),       \
              one = P##_set1_ps(1);                                                 \
            for (int j = 0; j < COLS; j += W) {                                     \
                V v = P##_div_ps(P##_mul_ps(ri, P##_loadu_ps(c + j)), S);           \
                v = P##_max_ps(v, E);                                               \
                P##_storeu_ps(u + i * COLS + j,                                     \
                              P##_mul_ps(P##_div_ps(one, P##_sqrt_ps(v)),           \
                                         P##_loadu_ps(g + i * COLS + j)));          \
            }                                                                       \
        }                                                                           \
    }
FUSED(fused128, "avx2", __m128, _mm, 4)
FUSED(fused256, "avx2", __m256, _mm256, 8)
FUSED(fused512, "avx512f", __m512, _mm512, 16)

/* fused128 with `/ s` as the f64 product with 1 / s, rounded to f32 (the
 * division's result for every normal quotient; a vector with a lane at
 * most the smallest normal is divided instead). */
__attribute__((target("avx2"))) static void reciprocal128(float s, float e) {
    __m128d inv = _mm_set1_pd(1.0 / (double)s);
    __m128 least = _mm_set1_ps(1.17549435e-38f);
    __m128 no_sign = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    for (int i = 0; i < ROWS; i++) {
        __m128 ri = _mm_set1_ps(r[i]), S = _mm_set1_ps(s), E = _mm_set1_ps(e),
               one = _mm_set1_ps(1);
        for (int j = 0; j < COLS; j += 4) {
            __m128 t = _mm_mul_ps(ri, _mm_loadu_ps(c + j));
            __m128d lo = _mm_mul_pd(_mm_cvtps_pd(t), inv);
            __m128d hi = _mm_mul_pd(_mm_cvtps_pd(_mm_movehl_ps(t, t)), inv);
            __m128 v = _mm_movelh_ps(_mm_cvtpd_ps(lo), _mm_cvtpd_ps(hi));
            if (_mm_movemask_ps(_mm_cmple_ps(_mm_and_ps(v, no_sign), least)))
                v = _mm_div_ps(t, S);
            v = _mm_max_ps(v, E);
            _mm_storeu_ps(u + i * COLS + j, _mm_mul_ps(_mm_div_ps(one, _mm_sqrt_ps(v)),
                                                       _mm_loadu_ps(g + i * COLS + j)));
        }
    }
}

/* One operation over a tile, as an interpreter's instruction. */
#define OP(name, expr)                                                              \
    __attribute__((target("avx512f"), noinline)) static void name(                \
        float *o, const float *a, const float *b, float k, int n) {                \
        __m512 K = _mm512_set1_ps(k);                                              \
        (void)b;                                                                   \
        (void)K;                                                                   \
        for (int i = 0; i < n; i += 16) {                                          \
            __m512 A = _mm512_loadu_ps(a + i);                                     \
            __m512 B = b ? _mm512_loadu_ps(b + i) : K;                             \
            (void)B;                                                               \
            _mm512_storeu_ps(o + i, expr);                                         \
        }                                                                          \
    }
OP(mul_k, _mm512_mul_ps(K, A))
OP(div_k, _mm512_div_ps(A, K))
OP(max_k, _mm512_max_ps(A, K))
OP(sqrt_a, _mm512_sqrt_ps(A))
OP(k_div, _mm512_div_ps(K, A))
OP(mul_b, _mm512_mul_ps(A, B))

static void tiles512(float s, float e) {
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j += TILE) {
            mul_k(t1, c + j, 0, r[i], TILE);
            div_k(t2, t1, 0, s, TILE);
            max_k(t3, t2, 0, e, TILE);
            sqrt_a(t4, t3, 0, 0, TILE);
            k_div(t1, t4, 0, 1.0f, TILE);
            mul_b(u + i * COLS + j, t1, g + i * COLS + j, 0, TILE);
        }
}

int main(void) {
    for (int i = 0; i < N; i++) g[i] = (i % 97) * 0.01f + 0.1f;
    for (int j = 0; j < COLS; j++) c[j] = 0.5f + j * 1e-4f;
    for (int i = 0; i < ROWS; i++) r[i] = 0.3f + i * 1e-3f;
    void (*f[5])(float, float) = {fused128, fused256, fused512, tiles512, reciprocal128};
    const char *name[5] = {"fused, 128-bit", "fused, 256-bit", "fused, 512-bit",
                           "tiles of 512, 512-bit", "128-bit, f64 reciprocal"};
    for (int k = 0; k < 5; k++) {
        double best = 1e9;
        for (int rep = 0; rep < 30; rep++) {
            double t0 = now();
            f[k](0.7f, 1e-6f);
            double t = now() - t0;
            if (t < best) best = t;
        }
        printf("%-22s %.3f ms  %.3f ns a number\n", name[k], best * 1e3, best * 1e9 / N);
    }
    return 0;
}
