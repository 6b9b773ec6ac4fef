package fiberdbtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// HostRequest builds a request for app.Test that Fiber routes by host. The
// target is a path ("/todos?done=1"); an absolute URL would override host.
//
// A non-nil body gets a Content-Type, so that c.BodyParser can read it:
// application/json when it is valid JSON, application/x-www-form-urlencoded
// when it looks like "a=1&b=2", text/plain otherwise. Set the header on the
// returned request to send another.
func HostRequest(method, host, target string, body io.Reader) *http.Request {
	var contentType string
	if body == nil {
		body = http.NoBody
	} else {
		b, err := io.ReadAll(body)
		if err != nil {
			// httptest.NewRequest panics on a bad target too: a test's own mistake.
			panic("fiberdbtest: read request body: " + err.Error())
		}
		contentType = sniffContentType(b)
		body = bytes.NewReader(b)
	}
	req := httptest.NewRequestWithContext(context.Background(), method, target, body)
	req.Host = host
	if contentType != "" {
		req.Header.Set(fiber.HeaderContentType, contentType)
	}
	return req
}

// HeaderRequest builds a request for app.Test that names its tenant in
// header, as header routing (FIBERDB.tenant_header) expects. A body gets a
// Content-Type as with [HostRequest].
func HeaderRequest(method, header, tenant, target string, body io.Reader) *http.Request {
	req := HostRequest(method, "localhost", target, body)
	req.Header.Set(header, tenant)
	return req
}

func sniffContentType(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if json.Valid(b) {
		return fiber.MIMEApplicationJSON
	}
	if s := string(b); strings.Contains(s, "=") && !strings.ContainsAny(s, " \t\r\n") {
		if _, err := url.ParseQuery(s); err == nil {
			return fiber.MIMEApplicationForm
		}
	}
	return fiber.MIMETextPlainCharsetUTF8
}

// Do serves req through app.Test with no timeout (a timed-out app.Test would
// leave the handler running with its connection) and returns the status and
// body, closing the body.
func Do(tb testing.TB, app *fiber.App, req *http.Request) (status int, body string) {
	tb.Helper()
	resp, err := app.Test(req, -1)
	if err != nil {
		tb.Fatalf("fiberdbtest: app.Test: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("fiberdbtest: read body: %v", err)
	}
	return resp.StatusCode, string(b)
}
