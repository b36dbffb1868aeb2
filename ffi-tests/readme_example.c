#include <stdio.h>
#include <string.h>
#include "spillway.h"

static int on_flush(void *user, const spw_item *items, size_t n, const spw_flush_info *info) {
    size_t *seen = user;
    for (size_t i = 0; i < n; i++)
        printf("partition %u: %.*s\n", info->partition, (int)items[i].len, (const char *)items[i].data);
    *seen += n;
    return 0; /* accepted; any other value makes spillway retry the batch */
}

int main(void) {
    spw_config *cfg = spw_config_new();
    if (spw_config_set(cfg, "max_size", "2") != SPW_OK ||
        spw_config_set(cfg, "flush_interval", "250ms") != SPW_OK) {
        fprintf(stderr, "config: %s\n", spw_last_error());
        return 1;
    }
    size_t seen = 0;
    spw_buffer *buf = NULL;
    if (spw_buffer_new(cfg, on_flush, &seen, &buf) != SPW_OK) {
        fprintf(stderr, "buffer: %s\n", spw_last_error());
        return 1;
    }
    spw_config_free(cfg);
    const char *lines[] = {"alpha", "beta", "gamma"};
    for (int i = 0; i < 3; i++)
        if (spw_buffer_insert(buf, lines[i], strlen(lines[i])) != SPW_OK)
            fprintf(stderr, "insert: %s\n", spw_last_error());
    spw_status st = spw_buffer_close(buf, 5000); /* flushes what is left */
    spw_buffer_free(buf);
    return (st == SPW_OK && seen == 3) ? 0 : 1;
}
