/* The C SDK: builders over the generated types, host call wrappers, and the
 * exports, which hand the calls to the plugin's plugin_* functions. */
#include "scope_plugin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Out of memory inside a guest: trap, the host answers with an error. */
static void *checked(void *ptr) {
    if (!ptr) __builtin_trap();
    return ptr;
}

/* Appends one zeroed element to a generated list (`ptr`, `len`); returns it. */
#define PUSH(list) \
    ((list).ptr = checked(realloc((list).ptr, ((list).len + 1) * sizeof(*(list).ptr))), \
     memset(&(list).ptr[(list).len], 0, sizeof(*(list).ptr)), &(list).ptr[(list).len++])

void scope_string(scope_string_t *out, const char *text) {
    size_t len = strlen(text);
    /* The generated cleanup frees only non-empty strings: an empty one owns nothing. */
    out->ptr = len ? checked(malloc(len)) : NULL;
    if (len) memcpy(out->ptr, text, len);
    out->len = len;
}

static char *vformat(const char *format, va_list args) {
    va_list copy;
    va_copy(copy, args);
    int len = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    char *text = checked(malloc((size_t)len + 1));
    vsnprintf(text, (size_t)len + 1, format, args);
    return text;
}

static char *format(const char *format_text, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *format_text, ...) {
    va_list args;
    va_start(args, format_text);
    char *text = vformat(format_text, args);
    va_end(args);
    return text;
}

/* A malloc'd NUL-terminated text as a string that owns it (the NUL is not
 * part of the string; an empty text is freed, see scope_string). */
static scope_string_t owned(char *text) {
    size_t len = strlen(text);
    if (len == 0) {
        free(text);
        text = NULL;
    }
    return (scope_string_t){(uint8_t *)text, len};
}

void scope_stringf(scope_string_t *out, const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *text = vformat(format, args);
    va_end(args);
    *out = owned(text);
}

bool scope_string_eq(const scope_string_t *s, const char *text) {
    size_t len = strlen(text);
    return s->len == len && memcmp(s->ptr, text, len) == 0;
}

char *scope_string_cstr(const scope_string_t *s) {
    char *text = checked(malloc(s->len + 1));
    memcpy(text, s->ptr, s->len);
    text[s->len] = 0;
    return text;
}

void scope_info(scope_plugin_info_t *info, const char *label, const char *description) {
    scope_string(&info->label, label);
    scope_string(&info->description, description);
}

scope_topology_t *scope_report_topology(scope_report_t *report, scope_topology_kind_t kind) {
    scope_topology_t *topology = PUSH(report->topologies);
    topology->kind = kind;
    return topology;
}

scope_node_t *scope_topology_node(scope_topology_t *topology, const char *id) {
    scope_node_t *node = PUSH(topology->nodes);
    scope_string(&node->id, id);
    return node;
}

scope_control_t *scope_topology_control(scope_topology_t *topology, const char *id, const char *human,
                                        const char *icon, int32_t rank, const char *confirmation) {
    scope_control_t *control = PUSH(topology->controls);
    scope_string(&control->id, id);
    scope_string(&control->human, human);
    scope_string(&control->icon, icon);
    control->rank = rank;
    if (confirmation) {
        control->confirmation.is_some = true;
        scope_string(&control->confirmation.val, confirmation);
    }
    return control;
}

scope_metadata_template_t *scope_topology_metadata_template(scope_topology_t *topology, const char *id,
                                                            const char *label, double priority) {
    scope_metadata_template_t *template = PUSH(topology->metadata_templates);
    scope_string(&template->id, id);
    scope_string(&template->label, label);
    template->priority = priority;
    template->data_type = SCOPE_PLUGIN_TYPES_METADATA_DATA_TYPE_TEXT;
    template->from = SCOPE_PLUGIN_TYPES_METADATA_SOURCE_LATEST;
    return template;
}

scope_metric_template_t *scope_topology_metric_template(scope_topology_t *topology, const char *id,
                                                        const char *label, double priority) {
    scope_metric_template_t *template = PUSH(topology->metric_templates);
    scope_string(&template->id, id);
    scope_string(&template->label, label);
    scope_string(&template->group, "");
    template->format = SCOPE_PLUGIN_TYPES_METRIC_FORMAT_NUMBER;
    template->priority = priority;
    return template;
}

scope_table_template_t *scope_topology_table_template(scope_topology_t *topology, const char *id,
                                                      const char *label, const char *prefix, bool multicolumn) {
    scope_table_template_t *table = PUSH(topology->table_templates);
    scope_string(&table->id, id);
    scope_string(&table->label, label);
    scope_string(&table->prefix, prefix);
    table->type = multicolumn ? SCOPE_PLUGIN_TYPES_TABLE_TYPE_MULTICOLUMN_TABLE : SCOPE_PLUGIN_TYPES_TABLE_TYPE_PROPERTY_LIST;
    return table;
}

void scope_table_column(scope_table_template_t *table, const char *id, const char *label) {
    scope_plugin_types_table_column_t *column = PUSH(table->columns);
    scope_string(&column->id, id);
    scope_string(&column->label, label);
    column->data_type = SCOPE_PLUGIN_TYPES_METADATA_DATA_TYPE_TEXT;
}

void scope_node_latest(scope_node_t *node, const char *key, const char *value) {
    scope_plugin_types_latest_entry_t *entry = PUSH(node->latest);
    scope_string(&entry->key, key);
    scope_string(&entry->value, value);
}

scope_metric_t *scope_node_metric(scope_node_t *node, const char *key, double min, double max) {
    scope_metric_t *metric = PUSH(node->metrics);
    scope_string(&metric->key, key);
    metric->min = min;
    metric->max = max;
    return metric;
}

void scope_metric_sample(scope_metric_t *metric, uint64_t timestamp_ms, double value) {
    scope_plugin_types_sample_t *sample = PUSH(metric->samples);
    sample->timestamp = timestamp_ms;
    sample->value = value;
}

void scope_node_set(scope_node_t *node, const char *key, const char *const *values, size_t count) {
    scope_plugin_types_string_set_t *set = PUSH(node->sets);
    scope_string(&set->key, key);
    for (size_t i = 0; i < count; i++) scope_string(PUSH(set->values), values[i]);
}

void scope_node_parent(scope_node_t *node, scope_topology_kind_t topology, const char *id) {
    for (size_t i = 0; i < node->parents.len; i++) {
        if (node->parents.ptr[i].topology == topology) {
            scope_string(PUSH(node->parents.ptr[i].ids), id);
            return;
        }
    }
    scope_plugin_types_parent_set_t *parents = PUSH(node->parents);
    parents->topology = topology;
    scope_string(PUSH(parents->ids), id);
}

void scope_node_active_control(scope_node_t *node, const char *control_id) {
    scope_string(PUSH(node->active_controls), control_id);
}

scope_report_t *scope_response_shortcut(scope_control_response_t *response) {
    response->shortcut_report.is_some = true;
    memset(&response->shortcut_report.val, 0, sizeof(response->shortcut_report.val));
    return &response->shortcut_report.val;
}

void scope_control_fail(scope_control_error_t *error, uint8_t tag, const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *text = vformat(format, args);
    va_end(args);
    error->tag = tag;
    /* Every case carries a string, at the same place. */
    error->val.failed = owned(text);
}

char *scope_control_arg(const scope_control_request_t *request, const char *key) {
    for (size_t i = 0; i < request->args.len; i++) {
        if (scope_string_eq(&request->args.ptr[i].f0, key)) return scope_string_cstr(&request->args.ptr[i].f1);
    }
    return NULL;
}

char *scope_hostname(void) {
    scope_string_t name;
    scope_plugin_host_hostname(&name);
    char *text = scope_string_cstr(&name);
    plugin_string_free(&name);
    return text;
}

char *scope_setting(const char *key) {
    scope_string_t name, value;
    plugin_string_set(&name, key);
    if (!scope_plugin_host_setting(&name, &value)) return NULL;
    char *text = scope_string_cstr(&value);
    plugin_string_free(&value);
    return text;
}

char *scope_this_host(void) {
    char *hostname = scope_hostname();
    size_t len = strlen(hostname) + sizeof(";<host>");
    char *id = checked(malloc(len));
    snprintf(id, len, "%s;<host>", hostname);
    free(hostname);
    return id;
}

uint64_t scope_now(void) {
    return scope_plugin_host_now();
}

void scope_log(scope_plugin_host_log_level_t level, const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *text = vformat(format, args);
    va_end(args);
    scope_string_t message = {(uint8_t *)text, strlen(text)};
    scope_plugin_host_log(level, &message);
    free(text);
}

bool scope_procfs_read(const char *path, char **text, scope_procfs_error_t *error) {
    scope_string_t wit_path = {(uint8_t *)path, strlen(path)};
    scope_string_t contents;
    if (!scope_plugin_procfs_read(&wit_path, &contents, error)) return false;
    *text = scope_string_cstr(&contents);
    plugin_string_free(&contents);
    return true;
}

const char *scope_procfs_error_kind(const scope_procfs_error_t *error) {
    switch (error->tag) {
    case SCOPE_PLUGIN_PROCFS_PROCFS_ERROR_NOT_FOUND: return "not-found";
    case SCOPE_PLUGIN_PROCFS_PROCFS_ERROR_DENIED: return "denied";
    case SCOPE_PLUGIN_PROCFS_PROCFS_ERROR_TOO_LARGE: return "too-large";
    default: return "io";
    }
}

void scope_procfs_error_free(scope_procfs_error_t *error) {
    scope_plugin_procfs_procfs_error_free(error);
}

/* The same words as the Rust SDK's Display. */
char *scope_procfs_error_text(const scope_procfs_error_t *error) {
    const scope_string_t *why = &error->val.not_found;
    switch (error->tag) {
    case SCOPE_PLUGIN_PROCFS_PROCFS_ERROR_NOT_FOUND:
        return format("procfs: %.*s does not exist (no such file, or the process has exited)", (int)why->len,
                      (const char *)why->ptr);
    case SCOPE_PLUGIN_PROCFS_PROCFS_ERROR_DENIED: {
        why = &error->val.denied;
        const char *text = (const char *)why->ptr;
        int len = (int)why->len;
        /* The host's not-granted text names the plugin, which the status already starts with. */
        const char *colon = len > 7 && memcmp(text, "plugin ", 7) == 0 ? memchr(text, ':', (size_t)len) : NULL;
        const char *rest = colon && colon + 2 <= text + len ? colon + 2 : text;
        if ((size_t)(text + len - rest) >= 21 && memcmp(rest, "procfs is not granted", 21) == 0) {
            return format("procfs denied: procfs is not granted to this plugin (add \"procfs\" to its grants in the config)");
        }
        return format("procfs denied: %.*s", len, text);
    }
    case SCOPE_PLUGIN_PROCFS_PROCFS_ERROR_TOO_LARGE:
        return format("procfs: the file is larger than the host's limit of %llu bytes",
                      (unsigned long long)error->val.too_large);
    default:
        why = &error->val.io;
        return format("procfs read failed: %.*s", (int)why->len, (const char *)why->ptr);
    }
}

_Noreturn void scope_abort(const char *format_text, ...) {
    va_list args;
    va_start(args, format_text);
    char *reason = vformat(format_text, args);
    va_end(args);
    /* The host keeps this error line as the trap's text (see docs/authors.md). */
    char *text = format("aborted: %.1024s", reason);
    scope_string_t message = {(uint8_t *)text, strlen(text)};
    scope_plugin_host_log(SCOPE_PLUGIN_HOST_LOG_LEVEL_ERROR, &message);
    abort();
}

/* The exports: the generated glue frees what they return once the host read it. */

void exports_scope_plugin_handler_describe(scope_plugin_info_t *ret) {
    memset(ret, 0, sizeof(*ret));
    plugin_describe(ret);
}

bool exports_scope_plugin_handler_report(scope_report_t *ret, scope_string_t *err) {
    memset(ret, 0, sizeof(*ret));
    memset(err, 0, sizeof(*err));
    if (plugin_report(ret, err)) return true;
    scope_plugin_types_report_free(ret); /* whatever was built before the failure */
    return false;
}

bool exports_scope_plugin_handler_control(scope_control_request_t *request, scope_control_response_t *ret,
                                          scope_control_error_t *err) {
    memset(ret, 0, sizeof(*ret));
    memset(err, 0, sizeof(*err));
    bool ok = plugin_control(request, ret, err);
    if (!ok) scope_plugin_types_control_response_free(ret);
    /* The request is the callee's to free. */
    scope_plugin_types_control_request_free(request);
    return ok;
}
