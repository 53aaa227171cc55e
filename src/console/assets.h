/* The console's files (src/console/assets/), compiled into the binary: no CDN, no file read at
 * run time. src/console/embed.cmake writes the table at build time. */
#ifndef HL_CONSOLE_ASSETS_H
#define HL_CONSOLE_ASSETS_H

#include <stddef.h>

struct hl_console_asset {
    const char *path; /* relative to assets/: "index.html", "js/app.js" */
    const unsigned char *data;
    size_t len;
};

/* Every asset, sorted by path; HL_CONSOLE_NASSETS of them. */
extern const struct hl_console_asset HL_CONSOLE_ASSETS[];
extern const size_t HL_CONSOLE_NASSETS;

#endif
