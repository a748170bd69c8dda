"""Reading event objects: local buckets, allowed URL prefixes, no redirects, size limit."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scalezero.errors import BadRequest, PayloadTooLarge
from scalezero.events.objects import Forbidden, ObjectNotFound, ObjectStore, url_allowed


@pytest.fixture
def server():
    """A real HTTP server: /uploads/x.jpg is an object, /redirect points elsewhere."""
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/")
                self.end_headers()
                return
            found = self.path == "/uploads/x.jpg"
            self.send_response(200 if found else 404)
            body = b"jpegbytes" if found else b""
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("url, ok", [
    ("http://minio:9000/uploads/a.jpg", True),
    ("http://minio:9000/other/a.jpg", False),
    ("http://minio:9001/uploads/a.jpg", False),
    ("https://minio:9000/uploads/a.jpg", False),
    ("http://user@minio:9000/uploads/a.jpg", False),
    ("http://minio:9000/uploads/../secret", False),
    ("file:///etc/passwd", False),
])
def test_url_prefixes(url, ok):
    assert url_allowed(url, ("http://minio:9000/uploads/",)) is ok


def test_local_bucket_read_and_escape(tmp_path):
    (tmp_path / "b" / "cam").mkdir(parents=True)
    (tmp_path / "b" / "cam" / "f.jpg").write_bytes(b"x")
    store = ObjectStore(bucket_root=tmp_path)
    assert store.read("b", "cam/f.jpg") == (str(tmp_path / "b" / "cam" / "f.jpg"), b"x")
    with pytest.raises(BadRequest, match="leaves bucket"):
        store.read("b", "../../etc/passwd")
    with pytest.raises(ObjectNotFound):
        store.read("b", "missing.jpg")
    with pytest.raises(ObjectNotFound, match="s3_endpoint is not set"):
        store.read("nobucket", "x")
    (tmp_path / "b" / "big").write_bytes(b"xx")
    with pytest.raises(PayloadTooLarge, match="max_object_bytes"):
        ObjectStore(bucket_root=tmp_path, max_bytes=1).read("b", "big")


def test_endpoint_fetch_only_under_allowed_prefixes(server):
    store = ObjectStore(endpoint=server, allowed_url_prefixes=(server + "/uploads/",))
    assert store.read("uploads", "x.jpg") == (server + "/uploads/x.jpg", b"jpegbytes")
    with pytest.raises(ObjectNotFound):
        store.read("uploads", "nope.jpg")
    with pytest.raises(Forbidden, match="allowed_url_prefixes"):
        store.read("private", "x.jpg")


def test_redirects_are_not_followed(server):
    store = ObjectStore(allowed_url_prefixes=(server + "/",))
    with pytest.raises(BadRequest, match="answered 302"):
        store.fetch(server + "/redirect")
