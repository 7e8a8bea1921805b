#!/bin/bash
# tar images: fetched from a local HTTP server on loopback, sha256-verified,
# unpacked once and reused (second instance starts with the server gone),
# copy-on-write per container; a wrong sha256 or bad URL aborts with `image`.
. "$(dirname "$0")/../lib/container.sh"
command -v python3 >/dev/null || { echo "skip: python3 needed for the HTTP server"; exit 77; }
EXEC_AS="/run/tm_bin/treadle container exec-as --envdir /env --user nobody --"

mkdir -p "$T/img/opt/app" "$T/www"
echo "hello from the image" >"$T/img/opt/app/hello.txt"
chmod -R a+rX "$T/img"; chmod 666 "$T/img/opt/app/hello.txt"
tar -C "$T/img" -cf "$T/www/app.tar" .
sum=$(sha256sum "$T/www/app.tar" | cut -d' ' -f1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$port" >"$T/http.log" 2>&1 &
httpd=$!
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/app.tar" && break; sleep 0.1; done
URL="http://127.0.0.1:$port/app.tar?sha256=$sum"

service I1 s "$EXEC_AS sh -c 'cat /opt/app/hello.txt; echo changed > /opt/app/hello.txt; cat /opt/app/hello.txt' >/run/tm_ctl/I1.out 2>&1; exec sleep 100000"
if start I1 --proid nobody --disk 16M --image "$URL"; then ok "tar image over HTTP starts"; else notok "tar image over HTTP starts"; cat "$T/apps/I1/data/aborted"; fi
wait_file "$T/ctl/I1.out" 5; sleep 0.2
assert "the image's files are in the root" grep -qx 'hello from the image' "$T/ctl/I1.out"
assert "the root is writable copy-on-write" grep -qx 'changed' "$T/ctl/I1.out"
assert "the image is cached by its sha256" test -f "$NODE/images/tar/$sum/rootfs/opt/app/hello.txt"
assert "the cache is untouched by the container's writes" grep -qx 'hello from the image' "$NODE/images/tar/$sum/rootfs/opt/app/hello.txt"

kill "$httpd"; wait "$httpd" 2>/dev/null
service I2 s "$EXEC_AS cat /opt/app/hello.txt >/run/tm_ctl/I2.out 2>&1; exec sleep 100000"
if start I2 --proid nobody --disk 16M --image "$URL"; then ok "a second instance reuses the cache (server gone)"; else notok "a second instance reuses the cache"; cat "$T/apps/I2/data/aborted"; fi
wait_file "$T/ctl/I2.out" 5
assert "second instance sees the image" grep -qx 'hello from the image' "$T/ctl/I2.out"

bad=$(printf '%064d' 0)
cp "$T/www/app.tar" "$T/app2.tar"
service I3 s 'exec sleep 100000'
start I3 --proid nobody --image "file://$T/app2.tar?sha256=$bad"
assert "wrong sha256 aborts with why=image" grep -q '"why":"image"' "$T/apps/I3/data/aborted"
assert "the message names the mismatch" grep -q 'sha256 mismatch' "$T/apps/I3/data/aborted"
assert "a rejected image is not cached" test ! -e "$NODE/images/tar/$bad"
service I4 s 'exec sleep 100000'
start I4 --proid nobody --image "http://127.0.0.1:$port/other.tar"
assert "unreachable image aborts with why=image" grep -q '"why":"image"' "$T/apps/I4/data/aborted"
echo "# $(cat "$T/apps/I4/data/aborted")"
echo "not a tar" >"$T/junk.tar"
service I5 s 'exec sleep 100000'
start I5 --proid nobody --image "file://$T/junk.tar"
assert "a non-tar aborts with why=image" grep -q 'not a tar' "$T/apps/I5/data/aborted"
# a server that accepts and never answers: the setup budget ends the fetch
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -c "import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1',$sport)); s.listen(8)
c=[]
t=time.time()
while time.time()-t < 20:
    s.settimeout(1)
    try: c.append(s.accept())
    except OSError: pass" &
slow=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$sport") 2>/dev/null && break; sleep 0.1; done
service I6 s 'exec sleep 100000'
t0=$(date +%s%N)
start I6 --proid nobody --timeout 1500 --image "http://127.0.0.1:$sport/slow.tar"
el=$(( ($(date +%s%N) - t0) / 1000000 ))
assert "a stalled image download aborts with why=timeout" grep -q '"why":"timeout"' "$T/apps/I6/data/aborted"
assert "within the setup timeout (${el} ms)" test "$el" -lt 6000
kill $slow 2>/dev/null; wait $slow 2>/dev/null
stop I1; stop I2
assert "no loop device left" test -z "$(losetup -a | grep "$T")"
done_testing
