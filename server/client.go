package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"

	"github.com/labstack/echo/v4"
)

// clientFile is one built client bundle, read once at start.
type clientFile struct {
	body        []byte
	etag        string
	contentType string
}

// maxClientFileBytes bounds what is read from Config.ClientFS.
const maxClientFileBytes = 4 << 20

// loadClientFiles reads the scripts (.js, .mjs) and source maps at the root
// of fsys; anything else there (type declarations, READMEs) is not served.
func loadClientFiles(fsys fs.FS) (map[string]clientFile, error) {
	files := make(map[string]clientFile)
	if fsys == nil {
		return files, nil
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read client files: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !servedExt[path.Ext(e.Name())] {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("read client file %s: %w", e.Name(), err)
		}
		if info.Size() > maxClientFileBytes {
			return nil, fmt.Errorf("client file %s is larger than %d bytes", e.Name(), maxClientFileBytes)
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read client file %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(b)
		files[e.Name()] = clientFile{
			body:        b,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`,
			contentType: contentTypeOf(e.Name()),
		}
	}
	return files, nil
}

var servedExt = map[string]bool{".js": true, ".mjs": true, ".map": true}

func contentTypeOf(name string) string {
	if path.Ext(name) == ".map" {
		return "application/json; charset=utf-8"
	}
	return "text/javascript; charset=utf-8"
}

// clientCacheControl lets browsers and CDNs keep a bundle for five minutes:
// short enough that an upgrade reaches everyone soon.
const clientCacheControl = "public, max-age=300"

// handleClient serves /client/<file> (waterspout.js, waterspout.mjs,
// waterspout.legacy.js) with an ETag, so revalidation costs a 304.
func (s *Server) handleClient(c echo.Context) error {
	f, ok := s.clientFiles[c.Param("file")]
	if !ok {
		if len(s.clientFiles) == 0 {
			return apiError(http.StatusNotFound, "the client bundle is not built into this server")
		}
		return apiError(http.StatusNotFound, "no such client file")
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, f.contentType)
	h.Set("Cache-Control", clientCacheControl)
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	// Public files without credentials: an ES module import from another
	// origin needs CORS, a classic <script> does not care.
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, bytes.NewReader(f.body))
	return nil
}
