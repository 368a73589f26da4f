package zuora

import (
	"net/url"
	"strings"
)

// UI deep links (§1). Zuora's classic UI addresses objects as
// <UI root>/apps/<Page>.do?method=view&id=<id>. The UI root comes from
// Environments; for any other base URL (the simulator, a Production Copy)
// links point at the same pages under the base URL itself.

// UIRoot returns the web UI root matching the client's base URL.
func (c *Client) UIRoot() string {
	base := c.ep.Load().base
	if c.cfg.UIRoot != "" && base == c.cfg.BaseURL { // the built-in simulator's pages
		return strings.TrimSuffix(c.cfg.UIRoot, "/")
	}
	if env, ok := EnvironmentFor(base); ok {
		return env.UIRoot
	}
	return base
}

func (c *Client) uiLink(page, id string) string {
	if id == "" {
		return ""
	}
	return c.UIRoot() + "/apps/" + page + ".do?method=view&id=" + url.QueryEscape(id)
}

// AccountURL links to an account (by its 32-character id) in Zuora's UI.
func (c *Client) AccountURL(id string) string { return c.uiLink("CustomerAccount", id) }

// SubscriptionURL links to a subscription (by id) in Zuora's UI.
func (c *Client) SubscriptionURL(id string) string { return c.uiLink("Subscription", id) }

// ProductURL links to a catalog product (by id) in Zuora's UI.
func (c *Client) ProductURL(id string) string { return c.uiLink("Product", id) }
