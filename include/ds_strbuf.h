// A growing text buffer (the canonical job text, the reducer's tables): printf appends.
#ifndef DS_STRBUF_H
#define DS_STRBUF_H

#include <stddef.h>

typedef struct {
    char *s;       // NUL-terminated text (NULL while empty), malloc'ed: the caller frees it
    size_t len, cap;
    int failed;    // an allocation or format failed: later appends do nothing
} ds_strbuf;

// Appends to b; on failure sets b->failed and keeps what was there.
void ds_sb_printf(ds_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Frees the text and empties b.
void ds_sb_free(ds_strbuf *b);

#endif
