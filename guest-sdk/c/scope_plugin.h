/*
 * Write Weave Scope plugins in C, as WebAssembly components for scope-wasm.
 *
 * The types are the ones `scope-guest-build bindings --lang c` generates from
 * wit/ (plugin.h); this header gives them short names and adds builders.
 *
 * A plugin implements three functions:
 *
 *   void plugin_describe(scope_plugin_info_t *info);
 *   bool plugin_report(scope_report_t *report, scope_string_t *error);
 *   bool plugin_control(const scope_control_request_t *request,
 *                       scope_control_response_t *response, scope_control_error_t *error);
 *
 * Return true on success; on failure return false and set `error`
 * (scope_error(), scope_control_fail()).
 *
 * Ownership, in one rule: everything a plugin hands back (the info, the report,
 * the response, an error) is built with the functions below, which allocate
 * with malloc, and belongs to the SDK, which frees it once the host has read it.
 * Never hand back a pointer to static or stack memory. `request` is lent to
 * `plugin_control` for the call; copy what you keep. Strings from the host
 * (scope_hostname(), scope_procfs_read()) are malloc'd NUL-terminated copies
 * that the caller frees.
 */
#ifndef SCOPE_PLUGIN_H
#define SCOPE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin.h"

typedef plugin_string_t scope_string_t;
typedef scope_plugin_types_plugin_info_t scope_plugin_info_t;
typedef scope_plugin_types_report_t scope_report_t;
typedef scope_plugin_types_topology_t scope_topology_t;
typedef scope_plugin_types_topology_kind_t scope_topology_kind_t;
typedef scope_plugin_types_node_t scope_node_t;
typedef scope_plugin_types_metric_t scope_metric_t;
typedef scope_plugin_types_control_t scope_control_t;
typedef scope_plugin_types_metadata_template_t scope_metadata_template_t;
typedef scope_plugin_types_metric_template_t scope_metric_template_t;
typedef scope_plugin_types_table_template_t scope_table_template_t;
typedef scope_plugin_types_control_request_t scope_control_request_t;
typedef scope_plugin_types_control_response_t scope_control_response_t;
typedef scope_plugin_types_control_error_t scope_control_error_t;
typedef scope_plugin_procfs_procfs_error_t scope_procfs_error_t;

/* Implemented by the plugin. */
void plugin_describe(scope_plugin_info_t *info);
bool plugin_report(scope_report_t *report, scope_string_t *error);
bool plugin_control(const scope_control_request_t *request, scope_control_response_t *response,
                    scope_control_error_t *error);

/* Strings. */
void scope_string(scope_string_t *out, const char *text); /* a malloc'd copy */
void scope_stringf(scope_string_t *out, const char *format, ...) __attribute__((format(printf, 2, 3)));
bool scope_string_eq(const scope_string_t *s, const char *text);
char *scope_string_cstr(const scope_string_t *s); /* a malloc'd NUL-terminated copy */

/* Plugin info, reports and topologies. */
void scope_info(scope_plugin_info_t *info, const char *label, const char *description);
scope_topology_t *scope_report_topology(scope_report_t *report, scope_topology_kind_t kind);
scope_node_t *scope_topology_node(scope_topology_t *topology, const char *id);
scope_control_t *scope_topology_control(scope_topology_t *topology, const char *id, const char *human,
                                        const char *icon, int32_t rank, const char *confirmation /* or NULL */);
scope_metadata_template_t *scope_topology_metadata_template(scope_topology_t *topology, const char *id,
                                                            const char *label, double priority);
scope_metric_template_t *scope_topology_metric_template(scope_topology_t *topology, const char *id,
                                                        const char *label, double priority);
scope_table_template_t *scope_topology_table_template(scope_topology_t *topology, const char *id,
                                                      const char *label, const char *prefix, bool multicolumn);
void scope_table_column(scope_table_template_t *table, const char *id, const char *label);

/* Nodes. */
void scope_node_latest(scope_node_t *node, const char *key, const char *value);
scope_metric_t *scope_node_metric(scope_node_t *node, const char *key, double min, double max);
void scope_metric_sample(scope_metric_t *metric, uint64_t timestamp_ms, double value);
void scope_node_set(scope_node_t *node, const char *key, const char *const *values, size_t count);
void scope_node_parent(scope_node_t *node, scope_topology_kind_t topology, const char *id);
void scope_node_active_control(scope_node_t *node, const char *control_id);

/* Control answers and errors. */
scope_report_t *scope_response_shortcut(scope_control_response_t *response); /* fill the returned report */
void scope_control_fail(scope_control_error_t *error, uint8_t tag, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
char *scope_control_arg(const scope_control_request_t *request, const char *key); /* malloc'd, or NULL */
#define SCOPE_UNKNOWN_CONTROL SCOPE_PLUGIN_TYPES_CONTROL_ERROR_UNKNOWN_CONTROL
#define SCOPE_UNKNOWN_NODE SCOPE_PLUGIN_TYPES_CONTROL_ERROR_UNKNOWN_NODE
#define SCOPE_INVALID_ARGUMENT SCOPE_PLUGIN_TYPES_CONTROL_ERROR_INVALID_ARGUMENT
#define SCOPE_FAILED SCOPE_PLUGIN_TYPES_CONTROL_ERROR_FAILED

/* Host calls. */
char *scope_hostname(void);  /* malloc'd */
/* One of the operator's settings for this plugin (`settings` in its config
 * section): malloc'd, or NULL when it is not set. */
char *scope_setting(const char *key);
char *scope_this_host(void); /* "<hostname>;<host>", malloc'd */
uint64_t scope_now(void);    /* ms since the Unix epoch */
void scope_log(scope_plugin_host_log_level_t level, const char *format, ...) __attribute__((format(printf, 2, 3)));
#define SCOPE_LOG_DEBUG SCOPE_PLUGIN_HOST_LOG_LEVEL_DEBUG
#define SCOPE_LOG_INFO SCOPE_PLUGIN_HOST_LOG_LEVEL_INFO
#define SCOPE_LOG_WARN SCOPE_PLUGIN_HOST_LOG_LEVEL_WARN
#define SCOPE_LOG_ERROR SCOPE_PLUGIN_HOST_LOG_LEVEL_ERROR

/* procfs: true and a malloc'd text, or false and a typed error (free it with
 * scope_procfs_error_free); scope_procfs_error_kind names its case. */
bool scope_procfs_read(const char *path, char **text, scope_procfs_error_t *error);
const char *scope_procfs_error_kind(const scope_procfs_error_t *error); /* "denied", "not-found", ... */
void scope_procfs_error_free(scope_procfs_error_t *error);
/* The error as the sentence a person reads, malloc'd (the caller frees it):
 * "procfs denied: /proc/kcore is not readable by plugins: ...". For a report:
 * scope_string(error, text) with it. */
char *scope_procfs_error_text(const scope_procfs_error_t *error);

/* Gives up: `reason` (printf-style, cut at 1024 bytes) becomes the plugin's
 * status, "trapped: aborted: REASON", and the instance is thrown away (the
 * next call starts a fresh one). For what cannot go on; return false with an
 * error for what can. */
_Noreturn void scope_abort(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* The other capabilities (docker, traffic, http-traffic) are called through
 * plugin.h directly: scope_plugin_docker_list_containers(), ... */

#endif
