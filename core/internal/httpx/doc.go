// Package httpx is the HTTP plumbing campaignd's servers share: the control
// API on its Unix socket (core/control), the public listener (core/web) and
// the admin listener. It imports only core and the standard library.
//
// It holds, each in one place:
//
//   - the error envelope {"error": {"code": "...", "message": "..."}}:
//     WriteError writes it, ReadError decodes it on the client side;
//   - the mapping from an error code to an HTTP status (Status) and back
//     (CodeForStatus), including the two codes only HTTP answers carry,
//     CodeUnauthorized and CodeMethodNotAllowed;
//   - WriteJSON and WriteBody for complete answers with their length;
//   - Body and ReadBody: a request body read under a size limit (413
//     too_large past it) and, optionally, an idle deadline;
//   - Guard, the outermost middleware: the request's log line, panic
//     recovery, and Connection: close for a body left unread;
//   - Routes, which gives a ServeMux's own 404 and 405 answers the
//     envelope (405 is method_not_allowed, with the Allow header);
//   - Server, the listen/serve/graceful-shutdown lifecycle of a used-once
//     http.Server.
//
// What differs between the servers stays with them: who may call (peer
// credentials, bearer tokens, sessions), what an error message may reveal,
// and the routes.
package httpx
