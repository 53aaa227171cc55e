/* Files compiled into the binary and served as they are: the OpenAPI document (converted from
 * openapi/hookline.yaml to JSON at build time), the API reference page's HTML, script and style,
 * and every file of the web console (src/console/assets, under /console/). tools/embed.c writes
 * the table from the rows CMakeLists.txt gives it (HL_ASSETS), so serving one more file is one
 * more row there (a console file: one more file in its folder).
 */
#ifndef HL_ASSETS_H
#define HL_ASSETS_H

#include <stddef.h>

struct hl_asset {
    const char *path;          /* the URL path it is served at: "/api/v1/openapi.json" */
    const char *type;          /* its Content-Type */
    const unsigned char *data; /* len bytes, followed by a NUL */
    size_t len;
};

/* Every embedded file, ended by a row whose path is NULL. */
extern const struct hl_asset hl_assets[];

#endif
