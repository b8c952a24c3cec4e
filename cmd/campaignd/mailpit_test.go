package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Mailpit is a mailpit server run for one test on free loopback ports: a
// real SMTP server with a REST API to read back what it received.
type Mailpit struct {
	t        testing.TB
	SMTPPort int
	HTTPPort int
	base     string
	cmd      *exec.Cmd
	done     chan struct{}
	log      *syncBuffer
}

// mailpitBin finds mailpit: $MAILPIT, else ../../bin/tools/mailpit (make
// tools). It fails the test when there is none: these tests must not pass
// by skipping.
func mailpitBin(t testing.TB) string {
	t.Helper()
	p := os.Getenv("MAILPIT")
	if p == "" {
		p = filepath.Join("..", "..", "bin", "tools", "mailpit")
	}
	abs, err := filepath.Abs(p)
	if err == nil {
		if fi, serr := os.Stat(abs); serr == nil && !fi.IsDir() {
			return abs
		}
	}
	t.Fatalf("mailpit not found at %s (set $MAILPIT or run make tools)", p)
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartMailpit starts mailpit on free loopback ports and waits until both
// its SMTP and HTTP ports answer; it is stopped at test cleanup. extraArgs
// are added to mailpit's command line (e.g. --pop3 ADDR).
func StartMailpit(t testing.TB, extraArgs ...string) *Mailpit {
	t.Helper()
	bin := mailpitBin(t)
	var lastErr string
	for try := 0; try < 3; try++ {
		m := &Mailpit{t: t, SMTPPort: freePort(t), HTTPPort: freePort(t), done: make(chan struct{}), log: &syncBuffer{}}
		m.base = fmt.Sprintf("http://127.0.0.1:%d", m.HTTPPort)
		m.cmd = exec.Command(bin,
			"--smtp", fmt.Sprintf("127.0.0.1:%d", m.SMTPPort),
			"--listen", fmt.Sprintf("127.0.0.1:%d", m.HTTPPort),
			"--database", filepath.Join(t.TempDir(), "mailpit.db"),
			"--max", "0",
			"--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
			"--smtp-disable-rdns", "--disable-version-check", "--quiet")
		m.cmd.Args = append(m.cmd.Args, extraArgs...)
		m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
		if err := m.cmd.Start(); err != nil {
			t.Fatalf("start mailpit: %v", err)
		}
		go func() { _ = m.cmd.Wait(); close(m.done) }()
		if m.waitReady(15 * time.Second) {
			t.Cleanup(m.stop)
			return m
		}
		lastErr = m.log.String()
		m.stop()
	}
	t.Fatalf("mailpit did not start:\n%s", lastErr)
	return nil
}

func (m *Mailpit) waitReady(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.SMTPPort), time.Second)
		if err == nil {
			c.Close()
			if resp, err := http.Get(m.base + "/api/v1/info"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return true
				}
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return false
}

func (m *Mailpit) stop() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// SenderTOML is a [senders.NAME] table for the smtp plugin pointing at
// this mailpit.
func (m *Mailpit) SenderTOML(name string, extra ...string) string {
	return smtpSenderTOML(name, "127.0.0.1", m.SMTPPort, extra...)
}

// MPAddress is an address in mailpit's API.
type MPAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// MPSummary is one message in mailpit's message list.
type MPSummary struct {
	ID        string      `json:"ID"`
	MessageID string      `json:"MessageID"` // without angle brackets
	From      MPAddress   `json:"From"`
	To        []MPAddress `json:"To"`
	Subject   string      `json:"Subject"`
}

// MPMessage is one message as GET /api/v1/message/{ID} returns it.
type MPMessage struct {
	ID              string      `json:"ID"`
	MessageID       string      `json:"MessageID"`
	From            MPAddress   `json:"From"`
	To              []MPAddress `json:"To"`
	Subject         string      `json:"Subject"`
	Text            string      `json:"Text"`
	HTML            string      `json:"HTML"`
	ListUnsubscribe struct {
		Header     string `json:"Header"`
		HeaderPost string `json:"HeaderPost"`
	} `json:"ListUnsubscribe"`
}

// fetch GETs path from the API and decodes its JSON answer into v.
func (m *Mailpit) fetch(path string, v any) error {
	resp, err := http.Get(m.base + path)
	if err != nil {
		return fmt.Errorf("mailpit GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit GET %s: %s %v\n%s", path, resp.Status, err, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("mailpit GET %s: decode: %v\n%s", path, err, body)
	}
	return nil
}

func (m *Mailpit) getJSON(path string, v any) {
	m.t.Helper()
	if err := m.fetch(path, v); err != nil {
		m.t.Fatal(err)
	}
}

// Count is how many messages mailpit holds.
func (m *Mailpit) Count() int {
	m.t.Helper()
	var page struct {
		Total int `json:"total"`
	}
	m.getJSON("/api/v1/messages?limit=1", &page)
	return page.Total
}

// Messages lists every message, paging through the API.
func (m *Mailpit) Messages() []MPSummary {
	m.t.Helper()
	var all []MPSummary
	const limit = 250
	for start := 0; ; start += limit {
		var page struct {
			Total    int         `json:"total"`
			Messages []MPSummary `json:"messages"`
		}
		m.getJSON("/api/v1/messages?"+url.Values{"start": {strconv.Itoa(start)}, "limit": {strconv.Itoa(limit)}}.Encode(), &page)
		all = append(all, page.Messages...)
		if len(page.Messages) < limit || len(all) >= page.Total {
			return all
		}
	}
}

// Message returns one message with its decoded bodies.
func (m *Mailpit) Message(id string) MPMessage {
	m.t.Helper()
	var msg MPMessage
	m.getJSON("/api/v1/message/"+url.PathEscape(id), &msg)
	return msg
}

// Headers returns one message's headers (canonical names, as mailpit
// gives them: "Message-Id", "Precedence", ...).
func (m *Mailpit) Headers(id string) map[string][]string {
	m.t.Helper()
	h := map[string][]string{}
	m.getJSON("/api/v1/message/"+url.PathEscape(id)+"/headers", &h)
	return h
}

// Full fetches the message and its headers for every summary, a few
// requests at a time; a failed fetch fails the test.
func (m *Mailpit) Full(sums []MPSummary) ([]MPMessage, []map[string][]string) {
	m.t.Helper()
	msgs := make([]MPMessage, len(sums))
	hdrs := make([]map[string][]string, len(sums))
	errs := make([]error, len(sums))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, s := range sums {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			hdrs[i] = map[string][]string{}
			if errs[i] = m.fetch("/api/v1/message/"+url.PathEscape(s.ID), &msgs[i]); errs[i] == nil {
				errs[i] = m.fetch("/api/v1/message/"+url.PathEscape(s.ID)+"/headers", &hdrs[i])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			m.t.Fatal(err)
		}
	}
	return msgs, hdrs
}

// WaitCount waits until mailpit holds at least n messages.
func (m *Mailpit) WaitCount(n int, timeout time.Duration) int {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := m.Count()
		if c >= n || time.Now().After(deadline) {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
}
