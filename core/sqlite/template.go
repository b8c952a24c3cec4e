package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/campaignd/campaignd/core"
)

// MissingAttrs counts campaignID's recipients in one of statuses whose
// attrs lack at least one of attrs (json_extract IS NULL: absent, or no
// attrs at all) and names the first of them and what it lacks. It scans
// the campaign's rowid range once (see BENCHMARKS.md): activate, execute
// and edit call it, never the tick. EINVALID for an attribute name JSON
// paths cannot quote.
func (db *DB) MissingAttrs(ctx context.Context, campaignID int64, attrs []string, statuses []core.RecipientStatus) (*core.MissingAttrs, error) {
	out := &core.MissingAttrs{}
	if len(attrs) == 0 || len(statuses) == 0 {
		return out, nil
	}
	var first, last sql.NullInt64
	if err := db.r.QueryRowContext(ctx, `SELECT first_recipient_id, last_recipient_id FROM campaigns WHERE id = ?`,
		campaignID).Scan(&first, &last); err != nil {
		if err == sql.ErrNoRows {
			return nil, errNoCampaign(campaignID)
		}
		return nil, internal("missing attributes", err)
	}
	if !first.Valid {
		return out, nil
	}
	var cond []string
	args := []any{first.Int64, last.Int64, campaignID}
	in := strings.Repeat("?, ", len(statuses)-1) + "?"
	for _, st := range statuses {
		args = append(args, string(st))
	}
	for _, a := range attrs {
		if strings.ContainsAny(a, `"\`) {
			return nil, core.Errorf(core.EINVALID, "attribute %q: a name with a quote or backslash cannot be checked", a)
		}
		cond = append(cond, "json_extract(attrs, ?) IS NULL")
		args = append(args, `$."`+a+`"`)
	}
	var minID sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT count(*), min(id) FROM recipients
		WHERE id BETWEEN ? AND ? AND campaign_id = ? AND status IN (`+in+`) AND (`+strings.Join(cond, " OR ")+`)`,
		args...).Scan(&out.Count, &minID)
	if err != nil {
		return nil, internal("missing attributes", err)
	}
	if out.Count == 0 {
		return out, nil
	}
	r, err := db.Recipient(ctx, minID.Int64)
	if err != nil {
		return nil, err
	}
	out.Example = r.Email
	for _, a := range attrs {
		if _, ok := r.Attrs[a]; !ok {
			out.Attrs = append(out.Attrs, a)
		}
	}
	return out, nil
}
