/*
 * The incept C API end to end: open a model, plan a session, run it on a synthetic
 * image (a gradient), print the top-5 classes.
 *
 *   cargo build --release -p incept-capi
 *   gcc -O2 -Wall -Wextra -Icapi/include capi/examples/c/example.c -Ltarget/release -lincept -o target/example
 *   LD_LIBRARY_PATH=target/release target/example nin_cifar10     # or a model file (.incept, .onnx)
 */
#include <stdio.h>
#include <stdlib.h>

#include "incept.h"

#define TOP 5

/* Prints the failed call and the library's message; returns 1 for main. */
static int fail(const char *what, int status) {
    fprintf(stderr, "example: %s failed (status %d): %s\n", what, status, incept_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL  (a built-in model name or a model file)\n", argv[0]);
        return 2;
    }
    printf("incept %s\n", incept_version());

    incept_model *model = NULL;
    int status = incept_model_open(argv[1], &model);
    if (status != INCEPT_OK) return fail("incept_model_open", status);

    incept_session *session = NULL;
    status = incept_session_create(model, 1, 1, &session);
    /* The session keeps the weights alive: the model handle can go now. */
    int closed = incept_model_close(model);
    if (status != INCEPT_OK) return fail("incept_session_create", status);
    if (closed != INCEPT_OK) return fail("incept_model_close", closed);

    size_t dims[4];
    size_t output_len = 0;
    if ((status = incept_session_input_shape(session, dims)) != INCEPT_OK)
        return fail("incept_session_input_shape", status);
    if ((status = incept_session_output_len(session, &output_len)) != INCEPT_OK)
        return fail("incept_session_output_len", status);
    size_t input_len = dims[0] * dims[1] * dims[2] * dims[3];
    printf("input [%zu, %zu, %zu, %zu], output %zu values\n", dims[0], dims[1], dims[2], dims[3], output_len);

    float *input = malloc(input_len * sizeof *input);
    float *output = malloc(output_len * sizeof *output);
    if (input == NULL || output == NULL) {
        fprintf(stderr, "example: out of memory\n");
        return 1;
    }
    /* A diagonal gradient per channel, in [-1, 1]. */
    size_t plane = dims[2] * dims[3];
    for (size_t i = 0; i < input_len; i++) {
        size_t c = i / plane % dims[1], y = i % plane / dims[3], x = i % dims[3];
        input[i] = (float)(x + y) / (float)(dims[2] + dims[3]) * 2.0f - 1.0f + 0.1f * (float)c;
    }

    status = incept_session_run(session, input, input_len, output, output_len);
    if (status != INCEPT_OK) return fail("incept_session_run", status);

    /* Top 5 by score (logits; an embedding model prints its first values by size). */
    int taken[TOP];
    size_t top = output_len < TOP ? output_len : TOP;
    for (size_t k = 0; k < top; k++) {
        int best = -1;
        for (size_t i = 0; i < output_len; i++) {
            int used = 0;
            for (size_t j = 0; j < k; j++) used |= taken[j] == (int)i;
            if (!used && (best < 0 || output[i] > output[best])) best = (int)i;
        }
        taken[k] = best;
        printf("%zu. class %4d  score %9.4f\n", k + 1, best, output[best]);
    }

    /* A deliberate misuse, reported rather than crashing: a wrong output length. */
    status = incept_session_run(session, input, input_len, output, output_len - 1);
    if (status != INCEPT_ERR_ARGUMENT) {
        fprintf(stderr, "example: a short output buffer was not rejected (status %d)\n", status);
        return 1;
    }
    printf("short output buffer rejected: %s\n", incept_last_error());

    free(input);
    free(output);
    if ((status = incept_session_close(session)) != INCEPT_OK) return fail("incept_session_close", status);
    return 0;
}
