package httpx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// Server runs one http.Server on one listener, once: Listen (or Use),
// Serve (blocking), then Shutdown. After Shutdown it cannot listen again.
// Its methods are safe to call from different goroutines.
type Server struct {
	name string
	srv  *http.Server

	mu     sync.Mutex
	ln     net.Listener
	served bool
}

// NewServer returns a Server for srv, whose handler, timeouts and logs are
// the caller's. name prefixes every error ("control", "web").
func NewServer(name string, srv *http.Server) *Server {
	return &Server{name: name, srv: srv}
}

// Listen opens a listener with net.Listen(network, address). It fails if
// the Server already has a listener or the address cannot be bound.
func (s *Server) Listen(network, address string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return fmt.Errorf("%s: listen on %s: already listening", s.name, address)
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", s.name, address, err)
	}
	s.ln = ln
	return nil
}

// Use gives the Server a listener the caller prepared (a Unix socket with
// its permissions set, say). It fails if the Server already has one; ln
// is then left to the caller.
func (s *Server) Use(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return fmt.Errorf("%s: listen on %s: already listening", s.name, ln.Addr())
	}
	s.ln = ln
	return nil
}

// Addr returns the listener's address (useful with port 0), or nil before
// Listen or Use.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve answers requests on the listener until Shutdown. It returns nil
// after Shutdown, and an error if there is no listener yet, Serve was
// already called, or accepting fails.
func (s *Server) Serve() error {
	s.mu.Lock()
	ln, served := s.ln, s.served
	if ln != nil {
		s.served = true
	}
	s.mu.Unlock()
	if ln == nil {
		return fmt.Errorf("%s: serve: Listen was not called", s.name)
	}
	if served {
		return fmt.Errorf("%s: serve: already serving", s.name)
	}
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", s.name, err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx is done, then closes the connections that remain and returns
// ctx's error, wrapped. The listener is closed in any case, also when
// Serve never ran. A handler still running after the forced close is not
// stopped; it only loses its connection.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
		err = fmt.Errorf("%s: shutdown: %w", s.name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil && !s.served {
		_ = s.ln.Close() // Serve never ran, so http.Server does not know it
	}
	return err
}
