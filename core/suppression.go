package core

import (
	"strings"
	"time"
)

// Suppression is one address on the global suppression list. Suppressed
// addresses are skipped at import and never mailed.
type Suppression struct {
	Email     string            `json:"email"`
	Reason    string            `json:"reason"`
	Source    SuppressionSource `json:"source"`
	CreatedAt time.Time         `json:"created_at"`
}

// SuppressionSource says how an address came onto the suppression list.
type SuppressionSource string

// Suppression sources. A provider event's source comes from its type (see
// EventType.SuppressionSource).
const (
	SourceBounce      SuppressionSource = "bounce"      // a send bounced (5.1.x), or a bounce event
	SourceDropped     SuppressionSource = "dropped"     // the provider dropped the message
	SourceComplaint   SuppressionSource = "complaint"   // a spam report
	SourceUnsubscribe SuppressionSource = "unsubscribe" // one-click unsubscribe, or the provider's unsubscribe event
	SourceOperator    SuppressionSource = "operator"    // campaignd suppress add (the default)
	SourceImport      SuppressionSource = "import"      // campaignd suppress import
)

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
