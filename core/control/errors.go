package control

import "errors"

// ErrNoDaemon is matched (errors.Is) by a Client error when no daemon is
// listening on the socket: the socket file is missing, or it is a stale file
// nobody accepts connections on (ECONNREFUSED). The CLI then runs the
// operation standalone. A socket the caller may not open (EACCES) is not
// ErrNoDaemon: a daemon is there, and the error is core.EFORBIDDEN.
var ErrNoDaemon = errors.New("no campaignd daemon is listening")
