# zk.sh: start and stop private ZooKeeper servers for tests (source it).
#
#   zk_start_single DIR [PORT]   one server; sets ZK_HOSTS=127.0.0.1:PORT
#   zk_start_ensemble DIR N      N servers (N=3 usually); sets ZK_HOSTS=h:p,h:p,...
#   zk_stop                      kill every server started here (call it from a trap)
#   zk_kill I                    SIGKILL server I (1-based)
#   zk_pause I / zk_resume I     SIGSTOP / SIGCONT server I
#   zk_ready PORT [SECS]         wait until `srvr` answers with "Mode:" (returns 1 on timeout)
#   zk_available                 0 if java and the ZooKeeper jars are installed
# Servers: java QuorumPeerMain straight from the Debian jars, tickTime=200, private dataDir under DIR,
# loopback only, random free ports, admin server off, -Xmx256m.  ZK_PIDS[i] and ZK_PORTS[i] hold the
# pid and client port of server i (1-based).

ZK_PIDS=()
ZK_PORTS=()
ZK_HOSTS=

zk_available() {
	command -v java >/dev/null 2>&1 && [ -r /usr/share/java/zookeeper.jar ]
}

zk_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

zk_ready() { # PORT [SECS]
	local port=$1 secs=${2:-30} i out
	for ((i = 0; i < secs * 10; i++)); do
		out=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null) || true
		case $out in *Mode:*) return 0 ;; esac
		sleep 0.1
	done
	return 1
}

_zk_conf() { # DIR ID PORT [server lines]
	local dir=$1 id=$2 port=$3
	mkdir -p "$dir/conf$id" "$dir/data$id"
	cat >"$dir/conf$id/zoo.cfg" <<CFG
tickTime=200
initLimit=50
syncLimit=25
dataDir=$dir/data$id
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
minSessionTimeout=400
maxSessionTimeout=60000
CFG
	cat >"$dir/conf$id/log4j.properties" <<'CFG'
log4j.rootLogger=WARN, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] %-5p %c{1}: %m%n
CFG
}

_zk_launch() { # DIR ID
	local dir=$1 id=$2 cp
	cp="$dir/conf$id:/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar"
	cp="$cp:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
	java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$cp" \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/conf$id/zoo.cfg" \
		>"$dir/server$id.log" 2>&1 &
	ZK_PIDS[$id]=$!
}

zk_start_single() { # DIR [PORT]
	local dir=$1 port=${2:-$(zk_free_port)}
	_zk_conf "$dir" 1 "$port"
	_zk_launch "$dir" 1
	ZK_PORTS[1]=$port
	ZK_HOSTS=127.0.0.1:$port
	zk_ready "$port" 60 || { echo "zk: server on $port did not start" >&2; tail -20 "$dir/server1.log" >&2; return 1; }
}

zk_start_ensemble() { # DIR N
	local dir=$1 n=${2:-3} i lines="" hosts=""
	for ((i = 1; i <= n; i++)); do
		ZK_PORTS[$i]=$(zk_free_port)
		lines="${lines}server.$i=127.0.0.1:$(zk_free_port):$(zk_free_port)"$'\n'
		hosts="${hosts:+$hosts,}127.0.0.1:${ZK_PORTS[$i]}"
	done
	for ((i = 1; i <= n; i++)); do
		_zk_conf "$dir" "$i" "${ZK_PORTS[$i]}"
		printf '%s' "$lines" >>"$dir/conf$i/zoo.cfg"
		echo "$i" >"$dir/data$i/myid"
		_zk_launch "$dir" "$i"
	done
	ZK_HOSTS=$hosts
	for ((i = 1; i <= n; i++)); do
		zk_ready "${ZK_PORTS[$i]}" 90 || { echo "zk: member $i did not join" >&2; tail -20 "$dir/server$i.log" >&2; return 1; }
	done
}

zk_kill() { # I
	local pid=${ZK_PIDS[$1]:-}
	[ -n "$pid" ] || return 0
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	ZK_PIDS[$1]=
}

zk_pause() { kill -STOP "${ZK_PIDS[$1]}"; }
zk_resume() { kill -CONT "${ZK_PIDS[$1]}"; }

zk_stop() {
	local i
	for i in "${!ZK_PIDS[@]}"; do
		[ -n "${ZK_PIDS[$i]}" ] && kill -CONT "${ZK_PIDS[$i]}" 2>/dev/null
		zk_kill "$i"
	done
	ZK_PIDS=()
}
