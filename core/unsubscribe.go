package core

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Unsubscriber makes and checks one-click unsubscribe tokens: an HMAC-SHA256
// over campaign and recipient ids with a secret from the configuration, so a
// token can be neither guessed nor forged, and needs no database lookup to
// reject.
type Unsubscriber struct {
	secret    []byte
	publicURL string
}

// NewUnsubscriber returns an Unsubscriber whose URLs start with publicURL
// (e.g. "https://mail.example.com"). EINVALID when the secret is shorter
// than 16 bytes.
func NewUnsubscriber(secret, publicURL string) (*Unsubscriber, error) {
	if len(secret) < 16 {
		return nil, Errorf(EINVALID, "unsubscribe secret: must be at least 16 characters")
	}
	return &Unsubscriber{secret: []byte(secret), publicURL: strings.TrimRight(publicURL, "/")}, nil
}

func (u *Unsubscriber) mac(cid, rid int64) []byte {
	m := hmac.New(sha256.New, u.secret)
	fmt.Fprintf(m, "unsubscribe:%d:%d", cid, rid)
	return m.Sum(nil)
}

// Token returns the token for one recipient of one campaign.
func (u *Unsubscriber) Token(campaignID, recipientID int64) string {
	return fmt.Sprintf("%d.%d.%s", campaignID, recipientID, base64.RawURLEncoding.EncodeToString(u.mac(campaignID, recipientID)))
}

// URL returns the recipient's one-click unsubscribe URL.
func (u *Unsubscriber) URL(c *Campaign, r *Recipient) string {
	return u.publicURL + "/unsubscribe/" + u.Token(c.ID, r.ID)
}

// Parse checks a token in constant time and returns its ids. EINVALID for
// a malformed or forged token. Only the exact text Token makes is
// accepted: no leading zeros or signs on the ids, no non-canonical base64
// (a last character differing only in the unused bits, an embedded
// newline), so every valid capability has exactly one spelling.
func (u *Unsubscriber) Parse(token string) (campaignID, recipientID int64, err error) {
	parts := strings.Split(token, ".")
	bad := Errorf(EINVALID, "invalid unsubscribe token")
	if len(parts) != 3 {
		return 0, 0, bad
	}
	cid, err1 := strconv.ParseInt(parts[0], 10, 64)
	rid, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || cid <= 0 || rid <= 0 {
		return 0, 0, bad
	}
	if !hmac.Equal([]byte(token), []byte(u.Token(cid, rid))) {
		return 0, 0, bad
	}
	return cid, rid, nil
}
