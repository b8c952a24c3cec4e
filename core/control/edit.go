package control

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/campaignd/campaignd/core"
)

// This file holds the routes that change a campaign's content or look at
// its messages: edit, clone, delete, preview and test send, server and
// client side.

// ---- handlers ----

func (s *Server) editCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := query(r, "allow_missing_attrs")
	if err != nil {
		return err
	}
	ctx, err := allowMissingAttrs(r.Context(), q)
	if err != nil {
		return err
	}
	var edit core.CampaignEdit
	if err := s.decodeJSON(w, r, &edit, false); err != nil {
		return err
	}
	c, err := s.svc.EditCampaign(ctx, id, edit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) cloneCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	var req core.CloneRequest
	if err := s.decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	c, err := s.svc.CloneCampaign(r.Context(), id, req)
	if err != nil {
		return err
	}
	if c != nil {
		w.Header().Set("Location", fmt.Sprintf("/v1/campaigns/%d", c.ID))
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) deleteCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := query(r, "dry_run")
	if err != nil {
		return err
	}
	dryRun := false
	if v := q.Get("dry_run"); v != "" {
		if dryRun, err = strconv.ParseBool(v); err != nil {
			return core.Errorf(core.EINVALID, "query parameter dry_run: %q is not true or false", v)
		}
	}
	if err := s.noBody(w, r); err != nil {
		return err
	}
	res, err := s.svc.DeleteCampaign(r.Context(), id, dryRun)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) preview(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := query(r, "recipient")
	if err != nil {
		return err
	}
	p, err := s.svc.Preview(r.Context(), id, q.Get("recipient"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) testSend(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	var req core.TestSendRequest
	if err := s.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	res, err := s.svc.TestSend(r.Context(), id, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// ---- client ----

// EditCampaign changes a DRAFT, ACTIVE or PAUSED campaign's fields that
// edit sets (PATCH /v1/campaigns/{id}) and returns the campaign after it.
// EINVALID for a bad field, ECONFLICT from another state, naming it, or
// for recipients lacking a newly referenced attribute (see
// core.Engine.EditCampaign); core.WithAllowMissingAttrs in ctx is carried
// to the daemon.
func (c *Client) EditCampaign(ctx context.Context, id int64, edit core.CampaignEdit) (*core.Campaign, error) {
	var out core.Campaign
	if err := c.do(ctx, call{op: "edit campaign", method: http.MethodPatch, path: campaignPath(id, ""),
		query: allowMissingAttrsQuery(ctx), in: &edit, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// CloneCampaign copies a campaign into a new DRAFT (POST
// /v1/campaigns/{id}/clone) and returns the new campaign.
func (c *Client) CloneCampaign(ctx context.Context, id int64, req core.CloneRequest) (*core.Campaign, error) {
	var out core.Campaign
	if err := c.do(ctx, call{op: "clone campaign", method: http.MethodPost, path: campaignPath(id, "/clone"), in: &req, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteCampaign removes a DRAFT, CANCELLED or COMPLETED campaign, or with
// dryRun counts what it would remove (DELETE /v1/campaigns/{id}).
func (c *Client) DeleteCampaign(ctx context.Context, id int64, dryRun bool) (*core.DeleteResult, error) {
	q := url.Values{}
	if dryRun {
		q.Set("dry_run", "true")
	}
	var out core.DeleteResult
	if err := c.do(ctx, call{op: "delete campaign", method: http.MethodDelete, path: campaignPath(id, ""), query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Preview renders the message a recipient of the campaign would get
// (GET /v1/campaigns/{id}/preview; email "" for the default recipient).
func (c *Client) Preview(ctx context.Context, id int64, email string) (*core.Preview, error) {
	q := url.Values{}
	if email != "" {
		q.Set("recipient", email)
	}
	var out core.Preview
	if err := c.do(ctx, call{op: "preview campaign", method: http.MethodGet, path: campaignPath(id, "/preview"), query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// TestSend sends one message of the campaign through the daemon's sender
// (POST /v1/campaigns/{id}/test). A send the provider refused is a result
// with Sent false, not an error.
func (c *Client) TestSend(ctx context.Context, id int64, req core.TestSendRequest) (*core.TestSendResult, error) {
	var out core.TestSendResult
	if err := c.do(ctx, call{op: "test send", method: http.MethodPost, path: campaignPath(id, "/test"), in: &req, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}
