/* The conformance plugin in C: the same behaviour, byte for byte, as
 * guests/conformance-rust (see there). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scope_plugin.h"

static uint64_t count;

void plugin_describe(scope_plugin_info_t *info) {
    scope_info(info, "Conformance (C)", "The same plugin in every language: a counter, a reset control, typed errors");
}

static void render(scope_report_t *report) {
    /* /proc/kcore is never readable: the typed error must come through. */
    const char *procfs = "ok";
    char *text;
    scope_procfs_error_t error;
    if (scope_procfs_read("kcore", &text, &error)) {
        free(text);
    } else {
        procfs = strcmp(scope_procfs_error_kind(&error), "denied") == 0 ? "denied" : "other-error";
        scope_procfs_error_free(&error);
    }

    /* Docker is not granted to it: the typed `denied` must come through
     * (called through the generated API; the error is ours to free). */
    const char *docker = "ok";
    scope_plugin_docker_list_container_summary_t containers;
    scope_plugin_docker_docker_error_t docker_error;
    if (scope_plugin_docker_list_containers(false, &containers, &docker_error)) {
        scope_plugin_docker_list_container_summary_free(&containers);
    } else {
        docker = docker_error.tag == SCOPE_PLUGIN_DOCKER_DOCKER_ERROR_DENIED ? "denied" : "other-error";
        scope_plugin_docker_docker_error_free(&docker_error);
    }

    char *host = scope_this_host();
    char count_text[24];
    snprintf(count_text, sizeof count_text, "%llu", (unsigned long long)count);
    scope_topology_t *topology = scope_report_topology(report, SCOPE_PLUGIN_TYPES_TOPOLOGY_KIND_HOST);
    scope_node_t *node = scope_topology_node(topology, host);
    scope_node_latest(node, "conformance_count", count_text);
    scope_node_latest(node, "conformance_procfs", procfs);
    scope_node_latest(node, "conformance_docker", docker);
    char *greeting = scope_setting("greeting");
    scope_node_latest(node, "conformance_greeting", greeting ? greeting : "unset");
    free(greeting);
    scope_metric_sample(scope_node_metric(node, "conformance_metric", 0, 1000), scope_now(), (double)count);
    const char *set[] = {"alpha", "beta"};
    scope_node_set(node, "conformance_set", set, 2);
    scope_node_active_control(node, "reset");
    scope_node_active_control(node, "fail");
    scope_topology_control(topology, "reset", "Reset the counter", "fa-undo", 1, NULL);
    scope_topology_control(topology, "fail", "Fail on purpose", "fa-bomb", 2, "Really fail?");
    scope_topology_metadata_template(topology, "conformance_count", "Count", 1.0)->data_type =
        SCOPE_PLUGIN_TYPES_METADATA_DATA_TYPE_NUMBER;
    scope_topology_metric_template(topology, "conformance_metric", "Count metric", 2.0)->format =
        SCOPE_PLUGIN_TYPES_METRIC_FORMAT_INTEGER;
    free(host);
}

bool plugin_report(scope_report_t *report, scope_string_t *error) {
    (void)error;
    render(report);
    return true;
}

/* Digits only (1 to 9), so every language accepts exactly the same strings. */
static bool whole_number(const char *text) {
    size_t len = strlen(text);
    if (len == 0 || len > 9) return false;
    for (size_t i = 0; i < len; i++)
        if (text[i] < '0' || text[i] > '9') return false;
    return true;
}

bool plugin_control(const scope_control_request_t *request, scope_control_response_t *response,
                    scope_control_error_t *error) {
    char *host = scope_this_host();
    bool on_host = scope_string_eq(&request->node_id, host);
    free(host);
    if (!on_host) {
        scope_control_fail(error, SCOPE_UNKNOWN_NODE, "%.*s", (int)request->node_id.len, request->node_id.ptr);
        return false;
    }
    if (scope_string_eq(&request->control, "reset")) {
        count = 0;
        scope_log(SCOPE_LOG_INFO, "conformance: reset");
    } else if (scope_string_eq(&request->control, "add")) {
        char *n = scope_control_arg(request, "n");
        bool valid = n && whole_number(n);
        if (!valid) {
            scope_control_fail(error, SCOPE_INVALID_ARGUMENT, "n must be a whole number, got '%s'", n ? n : "");
            free(n);
            return false;
        }
        count += strtoull(n, NULL, 10);
        free(n);
    } else if (scope_string_eq(&request->control, "fail")) {
        scope_control_fail(error, SCOPE_FAILED, "failing on purpose");
        return false;
    } else if (scope_string_eq(&request->control, "abort")) {
        /* Not in the reference: an abort's status text (tests/guest_errors.rs). */
        scope_abort("count %llu is beyond repair", (unsigned long long)count);
    } else {
        scope_control_fail(error, SCOPE_UNKNOWN_CONTROL, "%.*s", (int)request->control.len, request->control.ptr);
        return false;
    }
    render(scope_response_shortcut(response));
    return true;
}
