package admin

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// Server is the admin listener: Handler on a TCP address, with the
// timeouts of a listener that may face a browser. Listen, Serve (blocking),
// Shutdown, once.
type Server struct {
	address string
	hs      *httpx.Server
}

// NewServer returns the admin listener for address (host:port; a loopback
// address keeps it to this machine, which is the default the example
// configuration shows) serving h. EINVALID for an address without a port.
func NewServer(address string, h http.Handler) (*Server, error) {
	if _, _, err := net.SplitHostPort(address); err != nil {
		return nil, core.Errorf(core.EINVALID, "admin listener: listen %q: want host:port (e.g. 127.0.0.1:9090): %v", address, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	return &Server{address: address, hs: httpx.NewServer("admin listener", srv)}, nil
}

// Listen binds the address; it fails if it is taken.
func (s *Server) Listen() error { return s.hs.Listen("tcp", s.address) }

// Addr is the bound address (useful with port 0), nil before Listen.
func (s *Server) Addr() net.Addr { return s.hs.Addr() }

// Serve answers requests until Shutdown, then returns nil.
func (s *Server) Serve() error { return s.hs.Serve() }

// Shutdown stops accepting and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.hs.Shutdown(ctx) }
