package smtpsender_test

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/sdk/sdktest"

	"github.com/campaignd/campaignd/plugins/smtp/internal/smtpsender"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
	"github.com/campaignd/campaignd/sdk"
)

var _ sdk.Checker = (*smtpsender.Sender)(nil)

func check(t *testing.T, s *smtpsender.Sender) *sdk.Error { return sdktest.CheckError(t, s) }

func TestCheckOpensAndClosesASession(t *testing.T) {
	users := map[string]string{"u": "secret"}
	for _, tlsMode := range []string{smtpsender.TLSNone, smtpsender.TLSStartTLS, smtpsender.TLSImplicit} {
		t.Run(tlsMode, func(t *testing.T) {
			srv := startServer(t, smtptest.Options{TLS: tlsMode, Users: users, RequireAuth: true})
			s := configure(t, options(srv, tlsMode, map[string]string{"username": "u", "password": "secret"}))
			if e := check(t, s); e != nil {
				t.Fatalf("Check: %v", e)
			}
			if tlsMode == smtpsender.TLSNone {
				if c := srv.Commands(); !slices.Equal(c, []string{"EHLO", "AUTH", "QUIT"}) {
					t.Errorf("commands = %v, want [EHLO AUTH QUIT]", c)
				}
			}
			if len(srv.Messages()) != 0 {
				t.Error("Check delivered a message")
			}
			waitFor(t, "the session to end", func() bool { return srv.Active() == 0 })
			if _, idle := s.Stats(); idle != 0 {
				t.Errorf("Check left %d pooled sessions", idle)
			}
		})
	}
}

func TestCheckFailuresNameStageAndServer(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{Users: map[string]string{"u": "secret"}, RequireAuth: true})
		e := check(t, configure(t, options(srv, smtpsender.TLSNone, map[string]string{"username": "u", "password": "wrong"})))
		expect(t, e, sdk.ClassConfig, 535, "5.7.8", "AUTH "+srv.Addr+":")
	})
	t.Run("closed port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		host, port, _ := net.SplitHostPort(addr)
		e := check(t, configure(t, map[string]string{"host": host, "port": port, "tls": "none", "timeout": "3s"}))
		expect(t, e, sdk.ClassTransient, 0, "", "connect "+addr+": connection refused")
	})
	t.Run("no STARTTLS offered", func(t *testing.T) {
		srv := startServer(t, smtptest.Options{})
		e := check(t, configure(t, options(srv, smtpsender.TLSStartTLS, nil)))
		expect(t, e, sdk.ClassConfig, 0, "", "does not offer STARTTLS")
		if !strings.Contains(e.Message, srv.Addr) {
			t.Errorf("message %q does not name %s", e.Message, srv.Addr)
		}
	})
	t.Run("unconfigured", func(t *testing.T) {
		if e := check(t, smtpsender.New(nil)); e == nil || e.Class != sdk.ClassConfig {
			t.Errorf("Check before Configure: %v, want ClassConfig", e)
		}
	})
}
