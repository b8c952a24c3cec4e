package admin

import (
	"context"
	"strconv"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// QueueFunc reports the queue per campaign, as core.Service.Queue does:
// counters plus the retries not yet due, so O(campaigns) at scrape.
type QueueFunc func(ctx context.Context) ([]*core.QueueSummary, error)

// RestartsFunc reports how many times each sender's plugin was restarted
// since the process started (sdk/plugin.Pool.Restarts).
type RestartsFunc func() map[string]uint64

// Metrics is campaignd's Prometheus registry. It is a core.Observer: the
// engine reports outcomes and ticks to it as they are committed, and the
// queue gauges and plugin restarts are read when scraped. Safe for
// concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	emails   *prometheus.CounterVec
	tickDur  prometheus.Histogram
	lastTick prometheus.Gauge
}

var _ core.Observer = (*Metrics)(nil)

// NewMetrics returns the registry with every campaignd metric and the Go
// runtime's and process's collectors. queue and restarts may be nil (then
// those series are absent).
func NewMetrics(queue QueueFunc, restarts RestartsFunc) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaignd_emails_total",
			Help: "Send outcomes recorded by ticks: sent, failed, bounced, retried (transient, back in the queue), throttled.",
		}, []string{"campaign", "sender", "outcome"}),
		tickDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "campaignd_tick_duration_seconds",
			Help: "Wall time of each tick, idle ones included.",
			// From an idle tick (a read) to the 50 s tick_timeout.
			Buckets: []float64{.001, .005, .025, .1, .25, .5, 1, 2.5, 5, 10, 25, 50},
		}),
		lastTick: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "campaignd_last_tick_timestamp_seconds",
			Help: "Unix time at which the last tick of this process ended.",
		}),
	}
	m.reg.MustRegister(m.emails, m.tickDur, m.lastTick,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if queue != nil {
		m.reg.MustRegister(queueCollector(queue))
	}
	if restarts != nil {
		m.reg.MustRegister(restartCollector(restarts))
	}
	return m
}

// Registry is what /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Outcome counts one recorded send outcome.
func (m *Metrics) Outcome(campaignID int64, sender string, kind core.OutcomeKind) {
	m.emails.WithLabelValues(strconv.FormatInt(campaignID, 10), sender, string(kind)).Inc()
}

// TickDone observes a tick's duration and end.
func (m *Metrics) TickDone(rec *core.TickRecord) {
	m.tickDur.Observe(rec.Duration.Seconds())
	m.lastTick.Set(float64(rec.Started.Add(rec.Duration).UnixNano()) / 1e9)
}

// scrapeTimeout bounds the store read a scrape makes.
const scrapeTimeout = 5 * time.Second

var (
	queueDesc = prometheus.NewDesc("campaignd_queue_recipients",
		"Recipients of SENDING and PAUSED campaigns: due now, waiting for a retry, in flight.", []string{"state"}, nil)
	restartDesc = prometheus.NewDesc("campaignd_plugin_restarts_total",
		"Times a sender's plugin process was restarted after it crashed or hung.", []string{"sender"}, nil)
)

// funcCollector is a collector whose series are computed at scrape.
type funcCollector struct {
	desc *prometheus.Desc
	fn   func(ch chan<- prometheus.Metric)
}

func (c funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c funcCollector) Collect(ch chan<- prometheus.Metric) { c.fn(ch) }

// queueCollector sums the queue over campaigns. A store error yields an
// invalid metric, so the scrape reports it rather than a silent zero.
func queueCollector(queue QueueFunc) prometheus.Collector {
	return funcCollector{desc: queueDesc, fn: func(ch chan<- prometheus.Metric) {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		qs, err := queue(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(queueDesc, err)
			return
		}
		var due, waiting, inFlight int64
		for _, q := range qs {
			due, waiting, inFlight = due+q.DueNow, waiting+q.Waiting, inFlight+q.InFlight
		}
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(due), "due")
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(waiting), "waiting")
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(inFlight), "in_flight")
	}}
}

// restartCollector reports each sender's restart count.
func restartCollector(restarts RestartsFunc) prometheus.Collector {
	return funcCollector{desc: restartDesc, fn: func(ch chan<- prometheus.Metric) {
		for name, n := range restarts() {
			ch <- prometheus.MustNewConstMetric(restartDesc, prometheus.CounterValue, float64(n), name)
		}
	}}
}
