package core

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// FailureGroup is one kind of failure in a campaign: its FAILED or BOUNCED
// recipients with the same class, reply code, enhanced code and normalised
// text (see NormaliseErrorText), how many there are and one of them.
type FailureGroup struct {
	Status       RecipientStatus `json:"status"`
	Class        ErrorClass      `json:"class"`
	Code         int             `json:"code,omitempty"`
	EnhancedCode string          `json:"enhanced_code,omitempty"`
	Text         string          `json:"text"`
	Count        int64           `json:"count"`
	Example      string          `json:"example"`
}

// FailureReport is a campaign's failure breakdown, largest group first.
type FailureReport struct {
	CampaignID int64          `json:"campaign_id"`
	Failed     int64          `json:"failed"`
	Bounced    int64          `json:"bounced"`
	Groups     []FailureGroup `json:"groups"`
}

// maxFailureGroups bounds what one report holds: texts that normalise
// badly (a provider putting a fresh token in every reply) would otherwise
// make a group per recipient. Past it, the rest are counted in one last
// group of text "(other)".
const maxFailureGroups = 1000

// Failures groups campaign id's FAILED and BOUNCED recipients by status,
// class, code, enhanced code and normalised text, with counts and the
// first address met per group, largest group first (ties by class, code,
// text). It walks the campaign's failed and bounced rows once (see
// Store.EachFailure): linear in its failures, memory bounded by the number
// of groups. ENOTFOUND for an unknown campaign.
func (e *Engine) Failures(ctx context.Context, id int64) (*FailureReport, error) {
	type key struct {
		status   RecipientStatus
		class    ErrorClass
		code     int
		enhanced string
		text     string
	}
	groups := map[key]*FailureGroup{}
	norm := map[string]string{} // raw text -> normalised, while it stays small
	rep := &FailureReport{CampaignID: id, Groups: []FailureGroup{}}
	err := e.store.EachFailure(ctx, id, func(r *Recipient) error {
		if r.Status == RecipientBounced {
			rep.Bounced++
		} else {
			rep.Failed++
		}
		text, ok := norm[r.LastError]
		if !ok {
			text = NormaliseErrorText(r.LastError)
			if len(norm) < 10000 {
				norm[r.LastError] = text
			}
		}
		k := key{r.Status, r.LastErrorClass, r.LastErrorCode, r.LastEnhancedCode, text}
		g := groups[k]
		if g == nil {
			if len(groups) >= maxFailureGroups {
				k = key{status: r.Status, class: r.LastErrorClass, text: "(other)"}
				g = groups[k]
			}
			if g == nil {
				g = &FailureGroup{Status: k.status, Class: k.class, Code: k.code, EnhancedCode: k.enhanced, Text: k.text, Example: r.Email}
				groups[k] = g
			}
		}
		g.Count++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failures of campaign %d: %w", id, err)
	}
	for _, g := range groups {
		rep.Groups = append(rep.Groups, *g)
	}
	sort.Slice(rep.Groups, func(i, j int) bool {
		a, b := rep.Groups[i], rep.Groups[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Class != b.Class {
			return a.Class < b.Class
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Text < b.Text
	})
	return rep, nil
}

// NormaliseErrorText makes failure texts that differ only in what is
// particular to one recipient equal, so they group: a word holding an "@"
// becomes "<address>", a word of 8 or more characters mixing digits with
// letters (queue ids, message ids, hashes) becomes "<id>", every other run
// of digits becomes "#", and white space collapses to one space. "mailbox
// x@y full" and "mailbox z@w full" both become "mailbox <address> full".
func NormaliseErrorText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, w := range strings.Fields(s) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		// Keep the punctuation around a word: "<x@y>:" stays "<<address>>:".
		lead := len(w) - len(strings.TrimLeft(w, `<([{"'`))
		trail := len(w) - len(strings.TrimRight(w, `>)]}"',.;:`))
		if lead+trail >= len(w) {
			b.WriteString(w)
			continue
		}
		word := w[lead : len(w)-trail]
		b.WriteString(w[:lead])
		switch {
		case strings.Contains(word, "@"):
			b.WriteString("<address>")
		case isID(word):
			b.WriteString("<id>")
		default:
			digits := false
			for i := 0; i < len(word); i++ {
				c := word[i]
				if c >= '0' && c <= '9' {
					if !digits {
						b.WriteByte('#')
					}
					digits = true
					continue
				}
				digits = false
				b.WriteByte(c)
			}
		}
		b.WriteString(w[len(w)-trail:])
	}
	return b.String()
}

// isID reports whether a word looks like an identifier: 8 characters or
// more, with both digits and letters.
func isID(w string) bool {
	if len(w) < 8 {
		return false
	}
	var digit, letter bool
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letter = true
		}
	}
	return digit && letter
}
