package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// oneClickField and oneClickValue are the form field RFC 8058 requires in
// a one-click unsubscribe POST.
const (
	oneClickField = "List-Unsubscribe"
	oneClickValue = "One-Click"
)

// errBadLink is the answer for a forged, malformed or stale unsubscribe
// token: 404, saying no more than that.
var errBadLink = core.Errorf(core.ENOTFOUND, "invalid unsubscribe link")

// unsubscribePage handles GET (and HEAD) /unsubscribe/{token}: it checks
// the token and shows a page whose button makes the one-click POST. It
// changes nothing, so link scanners that fetch it unsubscribe nobody.
func (s *Server) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.cfg.Unsubscriber.Parse(r.PathValue("token")); err != nil {
		s.writeErrorPage(w, r, fmt.Errorf("unsubscribe page: %w", errBadLink))
		return
	}
	// No action attribute: the form posts back to this very URL, whatever
	// prefix a reverse proxy put in front of it.
	form := `<form method="post"><input type="hidden" name="` + oneClickField + `" value="` + oneClickValue + `">` +
		`<button type="submit">Unsubscribe</button></form>
`
	setPageHeaders(w)
	httpx.WriteBody(w, http.StatusOK, "text/html; charset=utf-8",
		htmlPage("Unsubscribe", "Press the button to stop receiving these emails at this address.", form))
}

// unsubscribePost handles POST /unsubscribe/{token}: the RFC 8058
// one-click unsubscribe.
func (s *Server) unsubscribePost(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if _, _, err := s.cfg.Unsubscriber.Parse(token); err != nil {
		s.writeErrorPage(w, r, fmt.Errorf("unsubscribe: %w", errBadLink))
		return
	}
	body, err := httpx.ReadBody(w, r, MaxUnsubscribeBodyBytes, "unsubscribe request body", 0)
	if err != nil {
		s.writeErrorPage(w, r, fmt.Errorf("unsubscribe: %w", err))
		return
	}
	if err := checkOneClick(r.Header.Get("Content-Type"), body); err != nil {
		s.writeErrorPage(w, r, fmt.Errorf("unsubscribe: %w", err))
		return
	}
	rcpt, err := s.b.Unsubscribe(r.Context(), s.cfg.Unsubscriber, token)
	if err != nil {
		if c := core.ErrorCode(err); c == core.EINVALID || c == core.ENOTFOUND {
			s.log.Info("unsubscribe refused", "error", err.Error())
			err = errBadLink
		}
		s.writeErrorPage(w, r, fmt.Errorf("unsubscribe: %w", err))
		return
	}
	s.log.Info("one-click unsubscribe", "campaign", rcpt.CampaignID, "recipient", rcpt.ID)
	setPageHeaders(w)
	httpx.WriteBody(w, http.StatusOK, "text/html; charset=utf-8",
		htmlPage("Unsubscribed", "You are unsubscribed: no more of these emails will be sent to this address.", ""))
}

// checkOneClick checks that a POST body carries List-Unsubscribe=One-Click,
// as multipart/form-data (what RFC 8058 says a client SHOULD send) or
// application/x-www-form-urlencoded (what it MAY send; also assumed for a
// body without a content type). EINVALID otherwise.
func checkOneClick(contentType string, body []byte) error {
	missing := core.Errorf(core.EINVALID, "not a one-click unsubscribe: the form field %s=%s is missing", oneClickField, oneClickValue)
	mt, params, err := mime.ParseMediaType(contentType)
	if contentType != "" && err != nil {
		return core.Errorf(core.EINVALID, "unreadable content type %q", contentType)
	}
	var values []string
	if mt == "multipart/form-data" {
		if params["boundary"] == "" {
			return core.Errorf(core.EINVALID, "multipart body without a boundary")
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return core.Errorf(core.EINVALID, "malformed multipart body")
			}
			if p.FormName() == oneClickField {
				v, err := io.ReadAll(p) // bounded by the body limit
				if err != nil {
					return core.Errorf(core.EINVALID, "malformed multipart body")
				}
				values = append(values, string(v))
			}
		}
	} else {
		q, err := url.ParseQuery(strings.TrimSpace(string(body)))
		if err != nil {
			return core.Errorf(core.EINVALID, "malformed form body")
		}
		values = q[oneClickField]
	}
	for _, v := range values {
		if strings.EqualFold(strings.TrimSpace(v), oneClickValue) {
			return nil
		}
	}
	return missing
}
