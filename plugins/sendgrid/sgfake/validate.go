package sgfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	netmail "net/mail"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Address is an email object of the request: {"email", "name"}.
type Address struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// Personalization is one envelope of the request.
type Personalization struct {
	To                  []Address         `json:"to"`
	CC                  []Address         `json:"cc,omitempty"`
	BCC                 []Address         `json:"bcc,omitempty"`
	From                *Address          `json:"from,omitempty"`
	Subject             string            `json:"subject,omitempty"`
	Headers             map[string]string `json:"headers,omitempty"`
	Substitutions       map[string]string `json:"substitutions,omitempty"`
	DynamicTemplateData map[string]any    `json:"dynamic_template_data,omitempty"`
	CustomArgs          map[string]string `json:"custom_args,omitempty"`
	SendAt              int64             `json:"send_at,omitempty"`
}

// Content is one body of the request: a MIME type and its value.
type Content struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Attachment is one attachment of the request (content is base64).
type Attachment struct {
	Content     string `json:"content"`
	Type        string `json:"type,omitempty"`
	Filename    string `json:"filename"`
	Disposition string `json:"disposition,omitempty"`
	ContentID   string `json:"content_id,omitempty"`
}

// ASM is the request's unsubscribe-group setting.
type ASM struct {
	GroupID         int64   `json:"group_id"`
	GroupsToDisplay []int64 `json:"groups_to_display,omitempty"`
}

// Setting is a mail setting that is only switched on or off.
type Setting struct {
	Enable *bool `json:"enable,omitempty"`
}

// MailSettings are the request's mail settings; those the fake does not
// interpret are kept raw.
type MailSettings struct {
	SandboxMode                 *Setting        `json:"sandbox_mode,omitempty"`
	BypassListManagement        *Setting        `json:"bypass_list_management,omitempty"`
	BypassSpamManagement        *Setting        `json:"bypass_spam_management,omitempty"`
	BypassBounceManagement      *Setting        `json:"bypass_bounce_management,omitempty"`
	BypassUnsubscribeManagement *Setting        `json:"bypass_unsubscribe_management,omitempty"`
	Footer                      json.RawMessage `json:"footer,omitempty"`
	BCC                         json.RawMessage `json:"bcc,omitempty"`
	SpamCheck                   json.RawMessage `json:"spam_check,omitempty"`
}

// Mail is a decoded, valid v3 Mail Send request body. Here and in the
// types it uses, each field is the JSON property its tag names, as the v3
// Mail Send reference defines it.
type Mail struct {
	Personalizations []Personalization `json:"personalizations"`
	From             Address           `json:"from"`
	ReplyTo          *Address          `json:"reply_to,omitempty"`
	ReplyToList      []Address         `json:"reply_to_list,omitempty"`
	Subject          string            `json:"subject,omitempty"`
	Content          []Content         `json:"content,omitempty"`
	Attachments      []Attachment      `json:"attachments,omitempty"`
	TemplateID       string            `json:"template_id,omitempty"`
	Sections         map[string]string `json:"sections,omitempty"`
	Headers          map[string]string `json:"headers,omitempty"`
	Categories       []string          `json:"categories,omitempty"`
	CustomArgs       map[string]string `json:"custom_args,omitempty"`
	SendAt           int64             `json:"send_at,omitempty"`
	BatchID          string            `json:"batch_id,omitempty"`
	ASM              *ASM              `json:"asm,omitempty"`
	IPPoolName       string            `json:"ip_pool_name,omitempty"`
	MailSettings     *MailSettings     `json:"mail_settings,omitempty"`
	TrackingSettings json.RawMessage   `json:"tracking_settings,omitempty"`
}

// Header returns the value of the message-level header name, compared
// case-insensitively, and whether it is set.
func (m Mail) Header(name string) (string, bool) {
	for k, v := range m.Headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// Body returns the value of the content block of the given MIME type
// ("text/plain", "text/html"), or "" when there is none.
func (m Mail) Body(mediaType string) string {
	for _, c := range m.Content {
		if strings.EqualFold(c.Type, mediaType) {
			return c.Value
		}
	}
	return ""
}

// Validate checks body as the real API checks a v3 Mail Send request and
// returns the documented {"errors":[...]} body the fake would answer with,
// or nil when the request is valid. It applies the default settings of a
// new Server (unknown fields rejected, any ASM group accepted). It is
// exported so that a test can check a request it built without sending
// it.
//
// The rules, each with the documented message, field and help link:
// personalizations present, 1..1000, each with at least one valid "to",
// no address twice within one personalization (to, cc and bcc together),
// no "," or ";" in recipient names (message text not documented), at most
// 1000 recipients in all; from present with a valid email; a non-empty
// subject at message level or in every personalization unless template_id
// is set; content present unless template_id is set, every block with a
// non-empty type (no ";", CR or LF) and value, text/plain first and
// text/html next, each at most once; headers with string values, ASCII
// names without spaces, no duplicates (case-insensitive), none of the
// reserved x-sg-id, x-sg-eid, received, dkim-signature, Content-Type,
// Content-Transfer-Encoding, To, From, Subject, Reply-To, CC, BCC;
// custom_args with string values and, merged with each personalization's,
// at most 10,000 bytes of JSON; categories at most 10 unique ASCII strings
// of at most 255 characters; asm.group_id an integer and at most 25
// groups_to_display; send_at an integer at most 72 hours ahead; reply_to
// and reply_to_list valid and not both; attachments with base64 content and
// a filename; settings' enable flags boolean. A value of the wrong JSON
// type where the documentation names no message is answered, as the real
// API does, with the single generic {"message":"Bad Request"}.
func Validate(body []byte) []byte {
	_, errs := validate(body, validateOptions{now: time.Now()})
	if len(errs) == 0 {
		return nil
	}
	b, _ := json.Marshal(errorBody{Errors: errs})
	return b
}

// validateOptions are the server settings validation depends on.
type validateOptions struct {
	allowUnknown bool
	asmGroups    map[int64]bool
	now          time.Time
}

// Documented messages (errors.md unless noted).
const (
	helpBase = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message."

	msgNoPersonalization  = "You must have at least one personalization."
	msgTooManyRecipients  = "There is a limit of 1000 total recipients (to + cc + bcc) per request."
	msgToRequired         = "The to parameter is required for all personalization objects."
	msgFromRequired       = `The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter. e.g. {"email" : "example@example.com"}  or {"email" : "example@example.com", "name" : "Example Recipient"}.`
	msgFromInvalid        = `The from object must at least have an email parameter with a valid email address and may also contain a name parameter. e.g. {"email" : "example@example.com"}  or {"email" : "example@example.com", "name" : "Example Recipient"}`
	msgReplyToInvalid     = `The reply_to object, when used, must at least have an email parameter with a valid email address and it may also contain a name parameter. e.g. {"email" : "example@example.com"}  or {"email" : "example@example.com", "name" : "Example Recipient"}`
	msgSubjectEmpty       = "The subject of your email must be a string at least one character in length."
	msgSubjectRequired    = "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined."
	msgContentRequired    = "The content param is required unless you are using a transactional template and have defined a template_ID."
	msgContentEmpty       = "There must be at least one defined content block. We typically suggest both text/plain and text/html blocks are included, but only one block is required."
	msgContentTypeMissing = "A content type is required, this tells email clients how to display the email."
	msgContentTypeEmpty   = "Your content type must be a string with length of at least one character."
	msgContentTypeChars   = "Cannot contain ';', or CRLF characters."
	msgContentValueMiss   = "A content value is required, this is the content of the email you are sending."
	msgContentValueEmpty  = "The content value must be a string at least one character in length."
	msgContentOrder       = "Following RFC 1341, section 7.2, if either text/html or text/plain are to be sent in your email: text/plain needs to be first, followed by text/html, followed by any other content."
	// Observed from the real API, not on the errors page.
	msgContentTwice     = "If present, text/plain and text/html may only be provided once."
	msgCustomArgsString = "All values of custom arguments object must be strings"
	msgCustomArgsEmpty  = "custom_args cannot be empty."
	msgCustomArgsSize   = "The combined size of both global and personalization custom arguments may not exceed 10,000 bytes per personalization."
	msgCategoriesArray  = "Categories must be an array of strings."
	msgCategoriesASCII  = "Categories can not contain non-ASCII characters."
	msgSendAt           = "The send_at parameter is expecting a Unix timestamp as an integer. We will send immediately if you include a send_at timestamp that is in the past."
	msgSendAtFar        = "Scheduling more than 72 hours in advance is forbidden."
	msgASMInteger       = "The ASM group ID must be an integer."
	msgASMDisplay       = "The ASM Group IDs to display must be an array of integers."
	msgASMDisplayMax    = "There is a limit of 25 unsubscribe groups that can be displayed to a user at a time."
	msgSubstitutions    = "The substitution values must be an object of key/value pairs, where the values are all strings."
	msgSubstitutionsMax = "You are limited to 10,000 substitutions."
	msgAttachContent    = "The attachment content must be a string at least one character in length."
	msgAttachBase64     = "The attachment content must be base64 encoded."
	msgAttachFilename   = "filename is required."
	msgAttachFileChars  = "The filename of your attachment cannot contain CRLF characters."
	msgAttachType       = "The attachment type must be a string and at least one character in length."
	msgAttachTypeChars  = "The type cannot contain ';', or CRLF characters."
	msgAttachCIDChars   = "The content ID of your attachment cannot contain CRLF characters."
	msgBatchID          = "The batch_id must be a string."
	msgSections         = "The section values must be strings."
	msgIPPool           = "The name of your IP pool must be a string."
	// The OpenAPI description says "either reply_to or reply_to_list but
	// not both" without an error text; this one is the fake's.
	msgReplyToBoth = "You can use either the reply_to property or reply_to_list property but not both."
	// The Mail Send overview forbids "," and ";" in recipient names
	// without an error text; this one is the fake's.
	msgNameChars = "The name of a recipient may not contain ';' or ','."
)

// headerTexts are the documented header errors, which differ in wording
// between the message level and personalizations.
type headerTexts struct{ notString, duplicate, badKey, reserved string }

var (
	messageHeaderTexts = headerTexts{
		notString: "The header values must be strings.",
		duplicate: "The headers cannot contain duplicate keys.",
		badKey:    "Header keys cannot contain non-ASCII characters and empty spaces.",
		reserved:  "Header can not be one of the reserved keys.",
	}
	personalizationHeaderTexts = headerTexts{
		notString: "All values of the headers object must be strings.",
		duplicate: "The headers cannot contain duplicate keys.",
		badKey:    "Header keys cannot contain non-ASCII characters or empty spaces.",
		reserved:  "Header cannot be one of the reserved keys.",
	}
)

// reservedHeaders are the documented headers a request may not set
// (compared case-insensitively).
var reservedHeaders = map[string]bool{
	"x-sg-id": true, "x-sg-eid": true, "received": true, "dkim-signature": true,
	"content-type": true, "content-transfer-encoding": true, "to": true, "from": true,
	"subject": true, "reply-to": true, "cc": true, "bcc": true,
}

// knownFields are the documented properties of the request body and of a
// personalization.
var (
	knownFields = map[string]bool{
		"personalizations": true, "from": true, "reply_to": true, "reply_to_list": true,
		"subject": true, "content": true, "attachments": true, "template_id": true,
		"sections": true, "headers": true, "categories": true, "custom_args": true,
		"send_at": true, "batch_id": true, "asm": true, "ip_pool_name": true,
		"mail_settings": true, "tracking_settings": true,
	}
	knownPersonalizationFields = map[string]bool{
		"to": true, "cc": true, "bcc": true, "from": true, "subject": true, "headers": true,
		"substitutions": true, "dynamic_template_data": true, "custom_args": true, "send_at": true,
	}
)

// settingEnableTexts are the messages for a non-boolean enable flag of a
// mail or tracking setting: documented, except the three bypass_*_management
// ones (newer settings the errors page predates), worded like the others.
var settingEnableTexts = map[string]string{
	"mail_settings.bcc":                           "The bcc enable param should be a boolean value.",
	"mail_settings.bypass_list_management":        "The bypass list management enable param should be a boolean value.",
	"mail_settings.footer":                        "The footer enable param should be a boolean value.",
	"mail_settings.sandbox_mode":                  "The sandbox mode enable param should be a boolean value.",
	"mail_settings.spam_check":                    "The spam check enable param should be a boolean value.",
	"tracking_settings.click_tracking":            "The click tracking enable param should be a boolean value.",
	"tracking_settings.open_tracking":             "The open tracking enable param should be a boolean value.",
	"tracking_settings.subscription_tracking":     "The subscription tracking enable param should be a boolean value.",
	"tracking_settings.ganalytics":                "The Google Analytics enable param must be a boolean value.",
	"mail_settings.bypass_spam_management":        "The bypass spam management enable param should be a boolean value.",
	"mail_settings.bypass_bounce_management":      "The bypass bounce management enable param should be a boolean value.",
	"mail_settings.bypass_unsubscribe_management": "The bypass unsubscribe management enable param should be a boolean value.",
}

// Limits from the documentation.
const (
	maxPersonalizations = 1000
	maxRecipients       = 1000
	maxAddressLen       = 320
	maxLocalLen         = 64
	maxDomainLen        = 255
	maxCustomArgsBytes  = 10000
	maxCategories       = 10
	maxCategoryLen      = 255
	maxGroupsToDisplay  = 25
	maxSubstitutions    = 10000
	maxSendAhead        = 72 * time.Hour
)

// validator accumulates errors; generic marks a type error the
// documentation gives no message for, which turns the whole answer into
// the generic "Bad Request".
type validator struct {
	opts    validateOptions
	errs    []apiError
	seen    map[string]bool
	generic bool
}

// add records an error about field ("" for none) once.
func (v *validator) add(field, msg string) {
	key := field + "\x00" + msg
	if v.seen[key] {
		return
	}
	v.seen[key] = true
	e := apiError{Message: msg}
	if field != "" {
		e.Field = ptr(field)
		e.Help = ptr(helpBase + helpAnchor(field))
	}
	v.errs = append(v.errs, e)
}

var indexRe = regexp.MustCompile(`\.\d+`)

// helpAnchor turns "personalizations.0.to.1.email" into the errors page
// anchor "personalizations.to".
func helpAnchor(field string) string {
	a := indexRe.ReplaceAllString(field, "")
	return strings.TrimSuffix(a, ".email")
}

// validate checks a request body; it returns the decoded Mail when there
// are no errors.
func validate(body []byte, opts validateOptions) (*Mail, []apiError) {
	v := &validator{opts: opts, seen: map[string]bool{}}
	top, ok := object(body)
	if !ok {
		return nil, genericErrors()
	}
	if !opts.allowUnknown {
		v.unknown("", top, knownFields)
	}
	templated := false
	if raw, ok := present(top, "template_id"); ok {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			v.add("template_id", fmt.Sprintf("The template ID must be a string, you provided %s.", raw))
		}
		templated = s != ""
	}

	v.from(top)
	everySubject := v.personalizations(top)
	v.subject(top, templated, everySubject)
	v.content(top, templated)
	if raw, ok := present(top, "headers"); ok {
		v.headers("headers", raw, messageHeaderTexts)
	}
	v.categories(top)
	v.customArgs(top)
	v.replyTo(top)
	v.asm(top)
	if raw, ok := present(top, "send_at"); ok {
		v.sendAt("send_at", raw)
	}
	if raw, ok := present(top, "batch_id"); ok && !isString(raw) {
		v.add("batch_id", msgBatchID)
	}
	if raw, ok := present(top, "ip_pool_name"); ok && !isString(raw) {
		v.add("ip_pool_name", msgIPPool)
	}
	if raw, ok := present(top, "sections"); ok {
		if _, _, nonString, isObj := stringMap(raw); !isObj || nonString {
			v.add("sections", msgSections)
		}
	}
	v.attachments(top)
	v.settings(top, "mail_settings")
	v.settings(top, "tracking_settings")

	if v.generic {
		return nil, genericErrors()
	}
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	var m Mail
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, genericErrors()
	}
	return &m, nil
}

// genericErrors is the real API's answer to a body of the wrong shape.
func genericErrors() []apiError {
	return []apiError{{Message: defaultMessages[400]}}
}

// unknown reports properties of obj that known does not list.
func (v *validator) unknown(prefix string, obj map[string]json.RawMessage, known map[string]bool) {
	var keys []string
	for k := range obj {
		if !known[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.add(prefix+k, fmt.Sprintf("Unknown field %q: it is not a property of this object.", k))
	}
}

func (v *validator) from(top map[string]json.RawMessage) {
	raw, ok := present(top, "from")
	if !ok {
		v.add("from", msgFromRequired)
		return
	}
	a, ok := v.address(raw)
	if !ok {
		return
	}
	switch {
	case len(a.Email) > maxAddressLen:
		v.add("from.email", "The From email exceeds the maximum total length of 320 characters")
	case !validEmail(a.Email):
		v.add("from.email", msgFromInvalid)
	}
}

// personalizations checks the envelopes and reports whether every one of
// them has a subject of its own.
func (v *validator) personalizations(top map[string]json.RawMessage) bool {
	raw, ok := present(top, "personalizations")
	if !ok {
		v.add("personalizations", msgNoPersonalization)
		return false
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		v.generic = true
		return false
	}
	switch {
	case len(list) == 0:
		v.add("personalizations", msgNoPersonalization)
		return false
	case len(list) > maxPersonalizations:
		v.add("personalizations", fmt.Sprintf("The personalization block is limited to 1000 personalizations per API request. You have provided %d personalizations. Please consider splitting this into multiple requests and resending your request.", len(list)))
	}
	everySubject, total := true, 0
	for i, praw := range list {
		pfx := fmt.Sprintf("personalizations.%d", i)
		p, ok := object(praw)
		if !ok {
			v.generic = true
			continue
		}
		if !v.opts.allowUnknown {
			v.unknown(pfx+".", p, knownPersonalizationFields)
		}
		seen := map[string]bool{}
		for _, kind := range []string{"to", "cc", "bcc"} {
			lraw, ok := present(p, kind)
			if !ok {
				if kind == "to" {
					v.add(pfx+".to", msgToRequired)
				}
				continue
			}
			var addrs []json.RawMessage
			if json.Unmarshal(lraw, &addrs) != nil {
				v.generic = true
				continue
			}
			if kind == "to" && len(addrs) == 0 {
				v.add(pfx+".to", msgToRequired)
			}
			total += len(addrs)
			for j, araw := range addrs {
				field := fmt.Sprintf("%s.%s.%d", pfx, kind, j)
				a, ok := v.address(araw)
				if !ok {
					continue
				}
				switch {
				case len(a.Email) > maxAddressLen:
					v.add(field+".email", fmt.Sprintf("The %s email exceeds the maximum total length of 320 characters", strings.ToUpper(kind[:1])+kind[1:]))
					continue
				case !validEmail(a.Email):
					v.add(field+".email", fmt.Sprintf(`The %s array must at least have an email parameter with a valid email address and it may also contain a name parameter. e.g. {"email" : "example@example.com"}  or {"email" : "example@example.com", "name" : "Example Recipient"}`, kind))
					continue
				}
				if strings.ContainsAny(a.Name, ",;") {
					v.add(field+".name", msgNameChars)
				}
				low := strings.ToLower(a.Email)
				if seen[low] {
					v.add(pfx, fmt.Sprintf("Each email address in the personalization block should be unique between to, cc, and bcc. We found the first duplicate instance of [%s] in the %s.%s field.", a.Email, pfx, kind))
				}
				seen[low] = true
			}
		}
		if sraw, ok := present(p, "subject"); ok {
			var s string
			if json.Unmarshal(sraw, &s) != nil {
				v.generic = true
			} else if s == "" {
				v.add(pfx+".subject", msgSubjectEmpty)
			}
			everySubject = everySubject && s != ""
		} else {
			everySubject = false
		}
		if fraw, ok := present(p, "from"); ok {
			if a, ok := v.address(fraw); ok && !validEmail(a.Email) {
				v.add(pfx+".from.email", msgFromInvalid)
			}
		}
		if hraw, ok := present(p, "headers"); ok {
			v.headers(pfx+".headers", hraw, personalizationHeaderTexts)
		}
		if sraw, ok := present(p, "substitutions"); ok {
			m, _, nonString, isObj := stringMap(sraw)
			switch {
			case !isObj || nonString:
				v.add(pfx+".substitutions", msgSubstitutions)
			case len(m) > maxSubstitutions:
				v.add(pfx+".substitutions", msgSubstitutionsMax)
			}
		}
		if craw, ok := present(p, "custom_args"); ok {
			m, _, nonString, isObj := stringMap(craw)
			switch {
			case !isObj || nonString:
				v.add(pfx+".custom_args", msgCustomArgsString)
			case len(m) == 0:
				v.add(pfx+".custom_args", msgCustomArgsEmpty)
			}
		}
		if draw, ok := present(p, "dynamic_template_data"); ok {
			if _, ok := object(draw); !ok {
				v.generic = true
			}
		}
		if sraw, ok := present(p, "send_at"); ok {
			v.sendAt(pfx+".send_at", sraw)
		}
	}
	if total > maxRecipients {
		v.add("personalizations", msgTooManyRecipients)
	}
	return everySubject
}

// address decodes an email object; a value of the wrong shape is generic.
func (v *validator) address(raw json.RawMessage) (Address, bool) {
	obj, ok := object(raw)
	if !ok {
		v.generic = true
		return Address{}, false
	}
	var a Address
	for k, dst := range map[string]*string{"email": &a.Email, "name": &a.Name} {
		if r, ok := present(obj, k); ok && json.Unmarshal(r, dst) != nil {
			v.generic = true
			return Address{}, false
		}
	}
	return a, true
}

func (v *validator) subject(top map[string]json.RawMessage, templated, everySubject bool) {
	raw, ok := present(top, "subject")
	if ok {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			v.generic = true
			return
		}
		if s == "" {
			v.add("subject", msgSubjectEmpty)
		}
		return
	}
	if !templated && !everySubject {
		v.add("subject", msgSubjectRequired)
	}
}

func (v *validator) content(top map[string]json.RawMessage, templated bool) {
	raw, ok := present(top, "content")
	if !ok {
		if !templated {
			v.add("content", msgContentRequired)
		}
		return
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		v.generic = true
		return
	}
	if len(list) == 0 && !templated {
		v.add("content", msgContentEmpty)
		return
	}
	plain, html := -1, -1
	for i, craw := range list {
		field := fmt.Sprintf("content.%d", i)
		c, ok := object(craw)
		if !ok {
			v.generic = true
			continue
		}
		var typ, val string
		if r, ok := present(c, "type"); !ok {
			v.add(field+".type", msgContentTypeMissing)
		} else if json.Unmarshal(r, &typ) != nil {
			v.add(field+".type", msgContentTypeEmpty)
		} else if typ == "" {
			v.add(field+".type", msgContentTypeEmpty)
		} else if strings.ContainsAny(typ, ";\r\n") {
			v.add(field+".type", msgContentTypeChars)
		}
		if r, ok := present(c, "value"); !ok {
			v.add(field+".value", msgContentValueMiss)
		} else if json.Unmarshal(r, &val) != nil || val == "" {
			v.add(field+".value", msgContentValueEmpty)
		}
		switch strings.ToLower(typ) {
		case "text/plain":
			if plain >= 0 {
				v.add("content", msgContentTwice)
			}
			plain = i
		case "text/html":
			if html >= 0 {
				v.add("content", msgContentTwice)
			}
			html = i
		}
	}
	wantHTML := 0
	if plain >= 0 {
		wantHTML = 1
	}
	if plain > 0 || (html >= 0 && html != wantHTML) {
		v.add("content", msgContentOrder)
	}
}

// headers checks a headers object at field with the level's texts.
func (v *validator) headers(field string, raw json.RawMessage, t headerTexts) {
	m, dups, nonString, isObj := stringMap(raw)
	if !isObj {
		v.add(field, t.notString)
		return
	}
	if nonString {
		v.add(field, t.notString)
	}
	if len(dups) > 0 {
		v.add(field, t.duplicate)
	}
	lower := map[string]bool{}
	for k := range m {
		lk := strings.ToLower(k)
		if lower[lk] {
			v.add(field, t.duplicate)
		}
		lower[lk] = true
		if !headerKeyOK(k) {
			v.add(field, t.badKey)
		}
		if reservedHeaders[lk] {
			v.add(field, t.reserved)
		}
	}
}

// headerKeyOK reports whether a header name is non-empty printable ASCII
// without spaces.
func headerKeyOK(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}

func (v *validator) categories(top map[string]json.RawMessage) {
	raw, ok := present(top, "categories")
	if !ok {
		return
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		v.add("categories", msgCategoriesArray)
		return
	}
	if len(list) > maxCategories {
		v.add("categories", fmt.Sprintf("There is a limit of 10 categories for each email that is sent. You provided %d categories.", len(list)))
	}
	seen := map[string]bool{}
	for _, craw := range list {
		var c string
		if json.Unmarshal(craw, &c) != nil {
			v.add("categories", msgCategoriesArray)
			continue
		}
		if len(c) > maxCategoryLen {
			v.add("categories", fmt.Sprintf("Each category must not be longer than 255 characters. %s exceeds this limit", c))
		}
		if seen[c] {
			v.add("categories", fmt.Sprintf("The categories must be a unique list, and you have included %s more than once.", c))
		}
		seen[c] = true
		for i := 0; i < len(c); i++ {
			if c[i] > '~' {
				v.add("categories", msgCategoriesASCII)
				break
			}
		}
	}
}

// customArgs checks the message-level custom_args and the documented size
// limit of each personalization's merged custom arguments, measured as the
// length of their JSON encoding (the documentation does not say how bytes
// are counted).
func (v *validator) customArgs(top map[string]json.RawMessage) {
	global := map[string]string{}
	if raw, ok := present(top, "custom_args"); ok {
		m, _, nonString, isObj := stringMap(raw)
		if !isObj || nonString {
			v.add("custom_args", msgCustomArgsString)
			return
		}
		global = m
	}
	var list []json.RawMessage
	if raw, ok := present(top, "personalizations"); ok {
		_ = json.Unmarshal(raw, &list)
	}
	if len(list) == 0 {
		list = []json.RawMessage{[]byte("{}")}
	}
	for i, praw := range list {
		merged := map[string]string{}
		for k, val := range global {
			merged[k] = val
		}
		field := "custom_args"
		if p, ok := object(praw); ok {
			if craw, ok := present(p, "custom_args"); ok {
				if m, _, nonString, isObj := stringMap(craw); isObj && !nonString {
					for k, val := range m {
						merged[k] = val
					}
					field = fmt.Sprintf("personalizations.%d.custom_args", i)
				}
			}
		}
		if b, _ := json.Marshal(merged); len(b) > maxCustomArgsBytes {
			v.add(field, msgCustomArgsSize)
		}
	}
}

func (v *validator) replyTo(top map[string]json.RawMessage) {
	one, hasOne := present(top, "reply_to")
	list, hasList := present(top, "reply_to_list")
	if hasOne && hasList {
		v.add("reply_to_list", msgReplyToBoth)
	}
	check := func(field string, raw json.RawMessage) {
		a, ok := v.address(raw)
		if !ok {
			return
		}
		switch {
		case len(a.Email) > maxAddressLen:
			v.add(field, "The Reply-To email exceeds the maximum total length of 320 characters")
		case !validEmail(a.Email):
			v.add(field, msgReplyToInvalid)
		}
	}
	if hasOne {
		check("reply_to", one)
	}
	if hasList {
		var addrs []json.RawMessage
		if json.Unmarshal(list, &addrs) != nil {
			v.generic = true
			return
		}
		for i, a := range addrs {
			check(fmt.Sprintf("reply_to_list.%d", i), a)
		}
	}
}

func (v *validator) asm(top map[string]json.RawMessage) {
	raw, ok := present(top, "asm")
	if !ok {
		return
	}
	obj, ok := object(raw)
	if !ok {
		v.generic = true
		return
	}
	id, ok := integer(obj["group_id"])
	if !ok {
		v.add("asm.group_id", msgASMInteger)
	} else if v.opts.asmGroups != nil && !v.opts.asmGroups[id] {
		v.add("asm.group_id", fmt.Sprintf("The ASM group ID must be a valid Group ID on your account. You provided %d.", id))
	}
	if draw, ok := present(obj, "groups_to_display"); ok {
		var list []json.RawMessage
		if json.Unmarshal(draw, &list) != nil {
			v.add("asm.groups_to_display", msgASMDisplay)
			return
		}
		if len(list) > maxGroupsToDisplay {
			v.add("asm.groups_to_display", msgASMDisplayMax)
		}
		var unknown []string
		for _, g := range list {
			gid, ok := integer(g)
			if !ok {
				v.add("asm.groups_to_display", msgASMDisplay)
				return
			}
			if v.opts.asmGroups != nil && !v.opts.asmGroups[gid] {
				unknown = append(unknown, fmt.Sprint(gid))
			}
		}
		if len(unknown) > 0 {
			v.add("asm.groups_to_display", fmt.Sprintf("All ASM groups to display must be valid ASM groups IDs on your account. You provided %s.", strings.Join(unknown, ", ")))
		}
	}
}

func (v *validator) sendAt(field string, raw json.RawMessage) {
	t, ok := integer(raw)
	if !ok {
		v.add(field, msgSendAt)
		return
	}
	if time.Unix(t, 0).After(v.opts.now.Add(maxSendAhead)) {
		v.add(field, msgSendAtFar)
	}
}

var base64Re = regexp.MustCompile(`^[A-Za-z0-9+/\r\n]*={0,2}$`)

func (v *validator) attachments(top map[string]json.RawMessage) {
	raw, ok := present(top, "attachments")
	if !ok {
		return
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		v.generic = true
		return
	}
	for i, araw := range list {
		pfx := fmt.Sprintf("attachments.%d", i)
		obj, ok := object(araw)
		if !ok {
			v.generic = true
			continue
		}
		str := func(k string) (string, bool, bool) {
			r, ok := present(obj, k)
			if !ok {
				return "", false, true
			}
			var s string
			err := json.Unmarshal(r, &s)
			return s, true, err == nil
		}
		content, has, isStr := str("content")
		switch {
		case !has || !isStr || content == "":
			v.add(pfx+".content", msgAttachContent)
		case !base64Re.MatchString(content) || decodeBase64(content) != nil:
			v.add(pfx+".content", msgAttachBase64)
		}
		name, has, isStr := str("filename")
		switch {
		case !has || !isStr || name == "":
			v.add(pfx+".filename", msgAttachFilename)
		case strings.ContainsAny(name, ";,\r\n"):
			v.add(pfx+".filename", msgAttachFileChars)
		}
		if typ, has, isStr := str("type"); has {
			switch {
			case !isStr || typ == "":
				v.add(pfx+".type", msgAttachType)
			case strings.ContainsAny(typ, ";\r\n"):
				v.add(pfx+".type", msgAttachTypeChars)
			}
		}
		if d, has, isStr := str("disposition"); has && (!isStr || (d != "inline" && d != "attachment")) {
			v.add(pfx+".disposition", fmt.Sprintf(`The disposition of your attachment can be either "inline" or "attachment". You provided %s.`, d))
		}
		if cid, has, isStr := str("content_id"); has && (!isStr || strings.ContainsAny(cid, ";,\r\n")) {
			v.add(pfx+".content_id", msgAttachCIDChars)
		}
	}
}

func decodeBase64(s string) error {
	s = strings.NewReplacer("\r", "", "\n", "").Replace(s)
	_, err := base64.StdEncoding.DecodeString(s)
	return err
}

// settings checks that every setting under name is an object whose enable
// flag, when present, is a boolean.
func (v *validator) settings(top map[string]json.RawMessage, name string) {
	raw, ok := present(top, name)
	if !ok {
		return
	}
	obj, ok := object(raw)
	if !ok {
		v.generic = true
		return
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := name + "." + k
		s, ok := object(obj[k])
		if !ok {
			v.generic = true
			continue
		}
		if e, ok := present(s, "enable"); ok {
			var b bool
			if json.Unmarshal(e, &b) != nil {
				msg, ok := settingEnableTexts[field]
				if !ok {
					v.generic = true
					continue
				}
				v.add(field+".enable", msg)
			}
		}
	}
}

// object decodes a JSON object, keeping its values raw; false when raw is
// not exactly one object.
func object(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return m, true
}

// present returns obj[key] unless it is missing or null (a null optional
// property is treated as absent).
func present(obj map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	r, ok := obj[key]
	if !ok || bytes.Equal(bytes.TrimSpace(r), []byte("null")) {
		return nil, false
	}
	return r, true
}

// isString reports whether raw is a JSON string.
func isString(raw json.RawMessage) bool {
	var s string
	return json.Unmarshal(raw, &s) == nil
}

// integer decodes a JSON integer.
func integer(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false // json.Number would also take a quoted "12"
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// stringMap decodes an object of strings token by token, so that repeated
// keys (which a map would silently merge) are seen. It reports the keys
// that repeat, whether some value is not a string, and whether raw is an
// object at all.
func stringMap(raw json.RawMessage) (m map[string]string, dups []string, nonString, isObj bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false, false
	}
	m = map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, false, false
		}
		k, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, nil, false, false
		}
		if _, ok := m[k]; ok {
			dups = append(dups, k)
		}
		var s string
		if json.Unmarshal(val, &s) != nil {
			nonString = true
		}
		m[k] = s
	}
	return m, dups, nonString, true
}

// validEmail reports whether s is one bare, plausible address: what
// net/mail accepts as an addr-spec with no display name, a dotted domain,
// and the documented length limits.
func validEmail(s string) bool {
	if s == "" || len(s) > maxAddressLen || strings.TrimSpace(s) != s {
		return false
	}
	a, err := netmail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if len(local) == 0 || len(local) > maxLocalLen || len(domain) > maxDomainLen {
		return false
	}
	if strings.HasPrefix(domain, "[") {
		return strings.HasSuffix(domain, "]")
	}
	return strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") &&
		!strings.HasSuffix(domain, ".") && !strings.Contains(domain, "..")
}
