/*
 * metrics: what the coordinator's Prometheus endpoint (metricsd.h) serves,
 * every family listed in docs/metrics.md: the coordinator's own figures
 * (start, epoch, messages by type), each agent's link, round trip and disk,
 * then the migrations' families (migset_metrics). Reads the coordinator's
 * state on the loop thread, changes nothing; a figure it does not know is
 * left out, never written as 0.
 */
#ifndef GODWIT_METRICS_H
#define GODWIT_METRICS_H

#include "coord.h"
#include "promtext.h"

/* metricsd_render_cb: arg is the coord_t. */
void metrics_render(promtext_t *p, void *arg);

#endif
