package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/admin"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs /metrics and parses the text exposition format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// value finds the series of family name with the given labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

func TestMetricsScrape(t *testing.T) {
	queue := func(context.Context) ([]*core.QueueSummary, error) {
		return []*core.QueueSummary{{CampaignID: 1, DueNow: 40, Waiting: 2, InFlight: 5}, {CampaignID: 2, DueNow: 10}}, nil
	}
	restarts := func() map[string]uint64 { return map[string]uint64{"smtp": 2} }
	m := admin.NewMetrics(queue, restarts)
	var obs core.Observer = m
	for range 3 {
		obs.Outcome(7, "smtp", core.OutcomeSent)
	}
	obs.Outcome(7, "smtp", core.OutcomeBounced)
	obs.Outcome(8, "sendgrid", core.OutcomeThrottled)
	end := time.Unix(1_800_000_000, 0)
	obs.TickDone(&core.TickRecord{Started: end.Add(-120 * time.Millisecond), Duration: 120 * time.Millisecond})
	obs.TickDone(&core.TickRecord{Started: end.Add(-time.Millisecond), Duration: time.Millisecond})
	srv := httptest.NewServer(admin.Handler(admin.Options{Metrics: m}))
	defer srv.Close()

	fams := scrape(t, srv.URL)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"campaignd_emails_total", map[string]string{"campaign": "7", "sender": "smtp", "outcome": "sent"}, 3},
		{"campaignd_emails_total", map[string]string{"campaign": "7", "sender": "smtp", "outcome": "bounced"}, 1},
		{"campaignd_emails_total", map[string]string{"campaign": "8", "sender": "sendgrid", "outcome": "throttled"}, 1},
		{"campaignd_queue_recipients", map[string]string{"state": "due"}, 50},
		{"campaignd_queue_recipients", map[string]string{"state": "waiting"}, 2},
		{"campaignd_queue_recipients", map[string]string{"state": "in_flight"}, 5},
		{"campaignd_tick_duration_seconds", nil, 2},
		{"campaignd_last_tick_timestamp_seconds", nil, 1_800_000_000},
		{"campaignd_plugin_restarts_total", map[string]string{"sender": "smtp"}, 2},
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if fams["campaignd_tick_duration_seconds"].GetType() != dto.MetricType_HISTOGRAM {
		t.Error("tick duration is not a histogram")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

// A failing store leaves the rest of the scrape readable.
func TestMetricsQueueError(t *testing.T) {
	m := admin.NewMetrics(func(context.Context) ([]*core.QueueSummary, error) { return nil, errors.New("disk gone") }, nil)
	m.Outcome(1, "smtp", core.OutcomeSent)
	srv := httptest.NewServer(admin.Handler(admin.Options{Metrics: m}))
	defer srv.Close()
	fams := scrape(t, srv.URL)
	if value(t, fams, "campaignd_emails_total", map[string]string{"outcome": "sent"}) != 1 {
		t.Fatal("emails lost with the queue")
	}
	if _, ok := fams["campaignd_queue_recipients"]; ok {
		t.Fatal("queue gauges despite the error")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var dbErr error
	srv := httptest.NewServer(admin.Handler(admin.Options{Ready: []admin.Check{
		{Name: "database", Fn: func(context.Context) error { return dbErr }},
		{Name: "sender smtp", Fn: func(context.Context) error { return nil }},
	}}))
	defer srv.Close()
	get := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b []byte
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		return resp, b
	}
	if resp, body := get("GET", "/healthz"); resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("healthz %d %q", resp.StatusCode, body)
	}
	resp, body := get("GET", "/readyz")
	var rd admin.Readiness
	if err := json.Unmarshal(body, &rd); err != nil || resp.StatusCode != 200 || rd.Status != "ready" || rd.Checks["database"] != "ok" {
		t.Fatalf("readyz %d %s %v", resp.StatusCode, body, err)
	}
	dbErr = errors.New("attempt to write a readonly database")
	resp, body = get("GET", "/readyz")
	if err := json.Unmarshal(body, &rd); err != nil || resp.StatusCode != 503 || rd.Status != "not ready" ||
		rd.Checks["database"] != dbErr.Error() || rd.Checks["sender smtp"] != "ok" {
		t.Fatalf("readyz failing %d %s %v", resp.StatusCode, body, err)
	}
	// No metrics configured: /metrics is not a route; methods are checked.
	if resp, body := get("GET", "/metrics"); resp.StatusCode != 404 || !json.Valid(body) {
		t.Fatalf("metrics without a registry %d %s", resp.StatusCode, body)
	}
	if resp, _ := get("POST", "/healthz"); resp.StatusCode != 405 {
		t.Fatalf("POST healthz %d", resp.StatusCode)
	}
}
