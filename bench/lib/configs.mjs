// Configurations of the servers the bench compares, all on 127.0.0.1, all forwarding to the same upstream.

/** nsd as the authoritative upstream: every zone of the data folder, one server process, no rate limiting. */
export function nsdConf({ port, dataDir, runDir, zones }) {
  const lines = [
    'server:',
    `    ip-address: 127.0.0.1@${port}`,
    `    port: ${port}`,
    '    server-count: 1',
    '    username: ""',
    '    chroot: ""',
    '    database: ""',
    `    zonesdir: "${dataDir}/zones"`,
    `    zonelistfile: "${runDir}/nsd.zonelist"`,
    `    xfrdfile: "${runDir}/nsd.xfrd"`,
    `    xfrdir: "${runDir}"`,
    `    pidfile: "${runDir}/nsd.pid"`,
    '    verbosity: 0',
    '    rrl-ratelimit: 0',
    '    receive-buffer-size: 4194304',
    '    send-buffer-size: 4194304',
    'remote-control:',
    '    control-enable: no',
  ];
  for (const z of zones) lines.push('zone:', `    name: "${z}"`, `    zonefile: "${z}.zone"`);
  return lines.join('\n') + '\n';
}

/**
 * Unbound as a forwarder with the blocklist as `local-zone: "<name>." always_nxdomain` (a listed name and every
 * name below it get NXDOMAIN), one thread, caches large enough to hold the whole mix.
 */
export function unboundConf({ port, upstreamPort, runDir, localZoneFile }) {
  return `server:
    interface: 127.0.0.1@${port}
    port: ${port}
    do-ip6: no
    num-threads: 1
    username: ""
    chroot: ""
    directory: "${runDir}"
    pidfile: "${runDir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    qname-minimisation: no
    prefetch: no
    module-config: "iterator"
    msg-cache-size: 64m
    rrset-cache-size: 128m
    num-queries-per-thread: 4096
    outgoing-range: 8192
    so-rcvbuf: 4m
    so-sndbuf: 4m
    # .test is served locally by default (RFC 6761); here it is the upstream's
    local-zone: "test." nodefault
include: "${localZoneFile}"
remote-control:
    control-enable: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@${upstreamPort}
`;
}

/**
 * dnsdist: a packet cache, and the blocklist as a SuffixMatchNode answered NXDOMAIN. With `dot` or `doh` (a port)
 * and `tls` ({ cert, key }), a DoT or DoH front end too (OpenSSL, TLS 1.2 and 1.3; DoH at /dns-query).
 */
export function dnsdistConf({ port, upstreamPort, blocklistFile, dot, doh, tls }) {
  const encrypted = [
    dot
      ? `addTLSLocal("127.0.0.1:${dot}", "${tls.cert}", "${tls.key}", {provider="openssl", minTLSVersion="tls1.2"})`
      : '',
    doh ? `addDOHLocal("127.0.0.1:${doh}", "${tls.cert}", "${tls.key}", "/dns-query", {minTLSVersion="tls1.2"})` : '',
  ]
    .filter(Boolean)
    .join('\n');
  return `-- no security polling: nothing leaves the machine
setSecurityPollSuffix("")
setLocal("127.0.0.1:${port}")
${encrypted}
setACL({"127.0.0.0/8"})
newServer({address="127.0.0.1:${upstreamPort}", name="upstream", checkName="h0.hot.test.", checkInterval=5})
getPool(""):setCache(newPacketCache(500000, {maxTTL=86400, minTTL=0, temporaryFailureTTL=60, staleTTL=60}))
local blocked = newSuffixMatchNode()
local n = 0
for name in io.lines("${blocklistFile}") do
  blocked:add(name)
  n = n + 1
end
addAction(SuffixMatchNodeRule(blocked, true), RCodeAction(DNSRCode.NXDOMAIN))
infolog("blocklist: " .. n .. " names")
`;
}

/**
 * hashwalld: the HWL1 release from a file:// mirror, a fresh state directory, metrics off, warn-level logs. With
 * `dot` or `doh` (a port) and `tls` ({ cert, key }), a DoT or DoH listener too.
 */
export function hashwalldConf({ port, upstreamPort, stateDir, release, workers, dot, doh, tls }) {
  const encrypted = [
    dot ? `dot:\n  listen: ['127.0.0.1:${dot}']` : '',
    doh ? `doh:\n  listen: ['127.0.0.1:${doh}']` : '',
    dot || doh ? `tls:\n  certFile: '${tls.cert}'\n  keyFile: '${tls.key}'` : '',
  ]
    .filter(Boolean)
    .join('\n');
  return `listen: ['127.0.0.1:${port}']
${encrypted}
upstreams: ['127.0.0.1:${upstreamPort}']
workers: ${workers}
stateDir: '${stateDir}'
metrics:
  listen: ''
logging:
  level: warn
lists:
  - id: bench
    mirrors: ['file://${release.release}/']
    keys: ['${release.publicKey}']
    hashKey: { id: '${release.hashKey.id}', key: '${release.hashKey.key}' }
    schedule: '0 0 1 1 *'
    maxListBytes: 134217728
    onStartWithoutList: wait
    startWaitMs: 120000
`;
}
