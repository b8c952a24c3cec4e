package smtpsender

import "testing"

func TestProviderID(t *testing.T) {
	for reply, want := range map[string]string{
		"2.0.0 Ok: queued as ABC123":              "ABC123",
		"Ok: queued as 4XyZ9p1qKz.":               "4XyZ9p1qKz",
		"OK id=1qAbCd-0004Xy-2Z":                  "1qAbCd-0004Xy-2Z",
		"2.0.0 OK (queued as 0A1B2C3D) thank you": "0A1B2C3D",
		"2.0.0 Accepted":                          "<m@id>",
		"":                                        "<m@id>",
	} {
		if got := providerID(reply, "<m@id>"); got != want {
			t.Errorf("providerID(%q) = %q, want %q", reply, got, want)
		}
	}
}
