package core

import (
	"strings"
	"time"
)

// Suppression is one address on the global suppression list. Suppressed
// addresses are skipped at import and never mailed.
type Suppression struct {
	Email     string    `json:"email"`
	Reason    string    `json:"reason"`
	Source    string    `json:"source"` // "bounce", "operator", "webhook", "unsubscribe"
	CreatedAt time.Time `json:"created_at"`
}

// Validate normalises the address (see NormalizeAddress) and checks the
// reason. It returns an EINVALID error saying what is wrong.
func (s *Suppression) Validate() error {
	addr, _, err := NormalizeAddress(s.Email)
	if err != nil {
		return err
	}
	s.Email = addr
	if strings.ContainsRune(s.Reason, 0) {
		return Errorf(EINVALID, "reason: contains a NUL byte")
	}
	return nil
}
