package httpx

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/campaignd/campaignd/core"
)

// MaxErrorBytes bounds how much of an error answer ReadError reads.
const MaxErrorBytes = 64 << 10

// ErrorResponse is the body of every JSON error answer.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody carries an error code and its message.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError answers with the envelope for code and message, with the
// status Status gives code. What message may reveal is the caller's
// decision.
func WriteError(w http.ResponseWriter, code, message string) {
	b, _ := json.Marshal(ErrorResponse{Error: ErrorBody{Code: code, Message: message}})
	w.Header().Set("X-Content-Type-Options", "nosniff")
	WriteBody(w, Status(code), "application/json", append(b, '\n'))
}

// WriteJSON answers with status and v as JSON. It returns an error, and
// writes nothing, when v cannot be encoded.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	WriteBody(w, status, "application/json", append(b, '\n'))
	return nil
}

// WriteBody writes a complete answer with its Content-Type and
// Content-Length.
func WriteBody(w http.ResponseWriter, status int, contentType string, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ReadError turns a non-2xx answer into a *core.Error: the code and message
// verbatim when the body is the envelope, otherwise the code CodeForStatus
// gives and a message quoting the status and the start of the body. It
// reads at most MaxErrorBytes and does not close the body.
func ReadError(resp *http.Response) *core.Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBytes))
	var er ErrorResponse
	if json.Unmarshal(b, &er) == nil && er.Error.Code != "" {
		return &core.Error{Code: er.Error.Code, Message: er.Error.Message}
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = "no details"
	}
	return &core.Error{Code: CodeForStatus(resp.StatusCode),
		Message: fmt.Sprintf("the daemon answered %s: %s", resp.Status, msg)}
}
