package smtptest

import (
	"bytes"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"
)

// Message is one accepted message, for one envelope recipient.
type Message struct {
	From string // envelope sender (MAIL FROM)
	To   string // envelope recipient (RCPT TO), lower-cased
	Data []byte // the message as received, dot-unstuffed
	// Header is the parsed header (nil if Data is no RFC 5322 message);
	// MessageID is its Message-ID with the angle brackets, Subject its
	// decoded Subject and Body the raw body (quoted-printable not decoded).
	Header    mail.Header
	MessageID string
	Subject   string
	Body      string
	User      string    // authenticated user, if any
	ConnID    int       // number of the connection that carried it (1-based)
	At        time.Time // when the final dot arrived
	// Committed is set for a message recorded before a held-back or
	// dropped reply: the server had the whole message, the client may
	// never have learned it.
	Committed bool
}

// Counts are a server's figures by Message-ID, kept in every mode.
type Counts struct {
	// Messages is every message taken (once per transaction, whatever the
	// number of recipients).
	Messages int64
	// Duplicates are the copies after the first of a Message-ID.
	Duplicates int64
	// NoMessageID are the messages without one (not in Duplicates).
	NoMessageID int64
}

var wordDecoder = &mime.WordDecoder{}

// record keeps a message the server took, one Message per recipient, and
// returns its queue number.
func (s *Server) record(from string, rcpts []string, data []byte, user string, connID int, committed bool) int {
	msg := Message{From: from, Data: data, User: user, ConnID: connID, At: time.Now(), Committed: committed}
	if m, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		body, _ := io.ReadAll(m.Body)
		msg.Header, msg.Body = m.Header, string(body)
		msg.MessageID = m.Header.Get("Message-Id")
		msg.Subject, _ = wordDecoder.DecodeHeader(m.Header.Get("Subject"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count(msg.MessageID != "", idHash(msg.MessageID))
	s.queued++
	for _, to := range rcpts {
		msg.To = strings.ToLower(to)
		s.messages = append(s.messages, msg)
	}
	return s.queued
}

// count adds one message to Counts; s.mu is held.
func (s *Server) count(hasID bool, h uint64) {
	s.counts.Messages++
	if !hasID {
		s.counts.NoMessageID++
		return
	}
	if s.copies[h] > 0 {
		s.counts.Duplicates++
	}
	s.copies[h] = min(s.copies[h], 254) + 1
}

// Messages returns the accepted messages in arrival order (none on a Lean
// server).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Received counts accepted messages per (lower-cased) envelope recipient.
func (s *Server) Received() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, msg := range s.messages {
		m[msg.To]++
	}
	return m
}

// Counts returns the messages taken so far, the duplicates among them by
// Message-ID and those without a Message-ID.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// headerMessageID returns the trimmed value of the first Message-ID field
// in the header of a raw message (nil if none), without allocating: the
// Lean server's parse. Folded fields are not unfolded.
func headerMessageID(raw []byte) []byte {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		line := raw
		if i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return nil // end of the header
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Message-Id")) {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}

// idHash is the 64-bit FNV-1a hash of a Message-ID: the copies table keys
// on it so that a million IDs cost no strings.
func idHash[T string | []byte](id T) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime
	}
	return h
}
