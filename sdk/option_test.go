package sdk_test

import (
	"testing"

	"github.com/campaignd/campaignd/sdk"
)

func TestUnknownOption(t *testing.T) {
	known := []string{"host", "port", "username", "password", "tls"}
	for _, tc := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"host": "x", "password": "p"}, ""},
		{nil, ""},
		{map[string]string{"pasword": "p"}, `unknown option "pasword" (did you mean "password"?)`},
		{map[string]string{"Host": "p"}, `unknown option "Host" (did you mean "host"?)`},
		{map[string]string{"usrname": "u", "zzz": "1"}, `unknown option "usrname" (did you mean "username"?)`},
		{map[string]string{"colour": "1"}, `unknown option "colour" (known: host, port, username, password, tls)`},
	} {
		err := sdk.UnknownOption(tc.opts, known...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v, want nil", tc.opts, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%v: %v, want %q", tc.opts, err, tc.want)
		}
	}
}
