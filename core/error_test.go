package core_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/campaignd/campaignd/core"
)

func TestErrorCodeThroughWrapping(t *testing.T) {
	err := fmt.Errorf("claim batch: %w", core.Errorf(core.ECONFLICT, "campaign 3 is PAUSED"))
	if got := core.ErrorCode(err); got != core.ECONFLICT {
		t.Errorf("ErrorCode = %q, want %q", got, core.ECONFLICT)
	}
	if got := core.ErrorMessage(err); got != "claim batch: campaign 3 is PAUSED" {
		t.Errorf("ErrorMessage = %q", got)
	}
	if got := core.ErrorCode(errors.New("disk I/O error")); got != core.EINTERNAL {
		t.Errorf("ErrorCode of a plain error = %q, want %q", got, core.EINTERNAL)
	}
	if core.ErrorCode(nil) != "" {
		t.Error("ErrorCode(nil) is not empty")
	}
}
