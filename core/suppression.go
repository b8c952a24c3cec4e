package core

import "time"

// Suppression is one address on the global suppression list. Suppressed
// addresses are skipped at import and never mailed.
type Suppression struct {
	Email     string    `json:"email"`
	Reason    string    `json:"reason"`
	Source    string    `json:"source"` // "bounce", "operator", "webhook", "unsubscribe"
	CreatedAt time.Time `json:"created_at"`
}
