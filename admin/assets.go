package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

//go:embed assets
var assetFS embed.FS

// asset is one embedded file with its content hash, which versions its URL
// so that browsers may cache it for good and still see a new release.
type asset struct {
	body []byte
	hash string
	typ  string
}

type assets struct {
	files map[string]asset
}

func loadAssets() *assets {
	a := &assets{files: make(map[string]asset)}
	entries, err := fs.ReadDir(assetFS, "assets")
	if err != nil {
		panic("admin: embedded assets missing: " + err.Error())
	}
	for _, e := range entries {
		b, err := assetFS.ReadFile("assets/" + e.Name())
		if err != nil {
			panic("admin: reading embedded asset: " + err.Error())
		}
		sum := sha256.Sum256(b)
		typ := mime.TypeByExtension(path.Ext(e.Name()))
		if typ == "" {
			typ = "application/octet-stream"
		}
		a.files[e.Name()] = asset{body: b, hash: hex.EncodeToString(sum[:8]), typ: typ}
	}
	return a
}

// url is where the pages link an asset, versioned by its hash.
func (a *assets) url(prefix, name string) string {
	return prefix + "/assets/" + name + "?v=" + a.files[name].hash
}

func (a *assets) serve(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := a.files[name]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.typ)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+f.hash+`"`)
	if r.URL.Query().Get("v") == f.hash {
		// Private: the prefix is behind sign-in, shared caches must not
		// keep it.
		h.Set("Cache-Control", "private, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "private, no-cache")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}
