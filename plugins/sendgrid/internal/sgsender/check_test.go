package sgsender_test

import (
	"net"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/sdk/sdktest"

	"github.com/campaignd/campaignd/plugins/sendgrid/internal/sgsender"
	"github.com/campaignd/campaignd/sdk"
)

var _ sdk.Checker = (*sgsender.Sender)(nil)

func checkErr(t *testing.T, s *sgsender.Sender) *sdk.Error { return sdktest.CheckError(t, s) }

func TestCheckValidKey(t *testing.T) {
	f := startFake(t)
	s, _ := newSender(t, f, nil)
	if e := checkErr(t, s); e != nil {
		t.Fatalf("Check: %v", e)
	}
	if st := f.Stats(); st.ScopeRequests != 1 || st.Requests != 0 || len(f.Messages()) != 0 {
		t.Errorf("stats after Check = %+v: want one scopes request and no send", st)
	}
}

func TestCheckFailures(t *testing.T) {
	f := startFake(t)
	for _, tc := range []struct {
		name   string
		extra  map[string]string
		scopes []string
		class  sdk.Class
		status int
		texts  []string
	}{
		{"wrong key", map[string]string{"api_key": "SG.wrong-key"}, nil, sdk.ClassConfig, 401,
			[]string{"GET " + f.URL() + "/v3/scopes:", "authorization grant is invalid"}},
		{"not the API", map[string]string{"api_url": f.URL() + "/elsewhere"}, nil, sdk.ClassConfig, 404,
			[]string{"check api_url"}},
		{"no mail.send", nil, []string{"alerts.read", "stats.read"}, sdk.ClassConfig, 200,
			[]string{"lacks the mail.send permission"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.SetScopes("mail.send")
			if tc.scopes != nil {
				f.SetScopes(tc.scopes...)
			}
			s, _ := newSender(t, f, tc.extra)
			e := checkErr(t, s)
			if e == nil || e.Class != tc.class || e.HTTPStatus != tc.status {
				t.Fatalf("Check = %#v, want %s with HTTP %d", e, tc.class, tc.status)
			}
			for _, x := range tc.texts {
				if !strings.Contains(e.Message, x) {
					t.Errorf("message %q does not mention %q", e.Message, x)
				}
			}
			if strings.Contains(e.Message, f.APIKey()) || strings.Contains(e.Message, "SG.wrong-key") {
				t.Errorf("message %q contains the API key", e.Message)
			}
		})
	}
}

func TestCheckUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f := startFake(t)
	s, _ := newSender(t, f, map[string]string{"api_url": "http://" + addr})
	if e := checkErr(t, s); e == nil || e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "connection refused") {
		t.Errorf("Check against a closed port = %v, want ClassTransient connection refused", e)
	}
}
