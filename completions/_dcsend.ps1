
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dcsend' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dcsend'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'dcsend' {
            [CompletionResult]::new('--threshold', '--threshold', [CompletionResultType]::ParameterName, 'Low-water threshold of the threshold-based sender: auto or a size [default: auto]')
            [CompletionResult]::new('--max-buffer', '--max-buffer', [CompletionResultType]::ParameterName, 'Memory bound of --threshold auto: the most it may let wait in the channel [default: 32MiB]')
            [CompletionResult]::new('--chunk-size', '--chunk-size', [CompletionResultType]::ParameterName, 'Size of each data message [default: 64KiB]')
            [CompletionResult]::new('--peer', '--peer', [CompletionResultType]::ParameterName, 'Connect through a signaling server (`dcsend signal`) instead of copy-paste')
            [CompletionResult]::new('--qr', '--qr', [CompletionResultType]::ParameterName, 'With --peer: show the page URL as a QR code, for a phone''s browser')
            [CompletionResult]::new('--join-timeout', '--join-timeout', [CompletionResultType]::ParameterName, 'With --peer: how long to wait for the other side to join the room')
            [CompletionResult]::new('--sdp-out', '--sdp-out', [CompletionResultType]::ParameterName, 'Write our token to PATH (atomically; a FIFO is written directly) instead of stderr')
            [CompletionResult]::new('--sdp-in', '--sdp-in', [CompletionResultType]::ParameterName, 'Read the peer''s token from PATH ("-" = stdin) instead of the terminal')
            [CompletionResult]::new('--stun', '--stun', [CompletionResultType]::ParameterName, 'STUN server, e.g. stun:stun.example.org:3478 (repeatable)')
            [CompletionResult]::new('--turn', '--turn', [CompletionResultType]::ParameterName, 'TURN server, e.g. turn:turn.example.org:3478 (repeatable)')
            [CompletionResult]::new('--turn-user', '--turn-user', [CompletionResultType]::ParameterName, 'TURN user name')
            [CompletionResult]::new('--turn-password-file', '--turn-password-file', [CompletionResultType]::ParameterName, 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up if the channel is not open this long after the peer''s token arrived; also bounds the wait for --sdp-in PATH to appear')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Local UDP address to bind (repeatable) [default: 0.0.0.0:0, every interface]')
            [CompletionResult]::new('--socket-buffer', '--socket-buffer', [CompletionResultType]::ParameterName, 'Kernel buffer to ask for on each UDP socket [default: 16MiB]')
            [CompletionResult]::new('--liveness-timeout', '--liveness-timeout', [CompletionResultType]::ParameterName, 'Declare the peer gone after this much silence once connected')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'When to show the live view on stderr')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Write progress and a final summary as NDJSON to PATH ("-" = stderr)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Send only plain binary messages, then close the channel, for receivers that are not dcsend (a browser, a Pion example)')
            [CompletionResult]::new('--compress', '--compress', [CompletionResultType]::ParameterName, 'Compress each message with zstd when that makes it at least 1/16 smaller (text, logs, source trees); a receiver that does not take compressed data gets it as it is')
            [CompletionResult]::new('--offer', '--offer', [CompletionResultType]::ParameterName, 'Make the offer (the sender''s default)')
            [CompletionResult]::new('--answer', '--answer', [CompletionResultType]::ParameterName, 'Wait for the peer''s offer and answer it (the receiver''s default)')
            [CompletionResult]::new('--long-token', '--long-token', [CompletionResultType]::ParameterName, 'Print our token in Pion''s long form, for a peer that is not dcsend')
            [CompletionResult]::new('--relay-only', '--relay-only', [CompletionResultType]::ParameterName, 'Use only TURN-relayed candidates')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send files or stdin (the default action)')
            [CompletionResult]::new('recv', 'recv', [CompletionResultType]::ParameterValue, 'Receive into stdout, a file or a folder')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure throughput over a loopback pair for a sweep of thresholds and message sizes')
            [CompletionResult]::new('signal', 'signal', [CompletionResultType]::ParameterValue, 'Run the signaling server that `--peer URL` connects through')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check what this machine''s network allows: public address, NAT type, TURN')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages (dcsend.1 and one per subcommand) into a folder')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dcsend;send' {
            [CompletionResult]::new('--threshold', '--threshold', [CompletionResultType]::ParameterName, 'Low-water threshold of the threshold-based sender: auto or a size [default: auto]')
            [CompletionResult]::new('--max-buffer', '--max-buffer', [CompletionResultType]::ParameterName, 'Memory bound of --threshold auto: the most it may let wait in the channel [default: 32MiB]')
            [CompletionResult]::new('--chunk-size', '--chunk-size', [CompletionResultType]::ParameterName, 'Size of each data message [default: 64KiB]')
            [CompletionResult]::new('--peer', '--peer', [CompletionResultType]::ParameterName, 'Connect through a signaling server (`dcsend signal`) instead of copy-paste')
            [CompletionResult]::new('--qr', '--qr', [CompletionResultType]::ParameterName, 'With --peer: show the page URL as a QR code, for a phone''s browser')
            [CompletionResult]::new('--join-timeout', '--join-timeout', [CompletionResultType]::ParameterName, 'With --peer: how long to wait for the other side to join the room')
            [CompletionResult]::new('--sdp-out', '--sdp-out', [CompletionResultType]::ParameterName, 'Write our token to PATH (atomically; a FIFO is written directly) instead of stderr')
            [CompletionResult]::new('--sdp-in', '--sdp-in', [CompletionResultType]::ParameterName, 'Read the peer''s token from PATH ("-" = stdin) instead of the terminal')
            [CompletionResult]::new('--stun', '--stun', [CompletionResultType]::ParameterName, 'STUN server, e.g. stun:stun.example.org:3478 (repeatable)')
            [CompletionResult]::new('--turn', '--turn', [CompletionResultType]::ParameterName, 'TURN server, e.g. turn:turn.example.org:3478 (repeatable)')
            [CompletionResult]::new('--turn-user', '--turn-user', [CompletionResultType]::ParameterName, 'TURN user name')
            [CompletionResult]::new('--turn-password-file', '--turn-password-file', [CompletionResultType]::ParameterName, 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up if the channel is not open this long after the peer''s token arrived; also bounds the wait for --sdp-in PATH to appear')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Local UDP address to bind (repeatable) [default: 0.0.0.0:0, every interface]')
            [CompletionResult]::new('--socket-buffer', '--socket-buffer', [CompletionResultType]::ParameterName, 'Kernel buffer to ask for on each UDP socket [default: 16MiB]')
            [CompletionResult]::new('--liveness-timeout', '--liveness-timeout', [CompletionResultType]::ParameterName, 'Declare the peer gone after this much silence once connected')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'When to show the live view on stderr')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Write progress and a final summary as NDJSON to PATH ("-" = stderr)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Send only plain binary messages, then close the channel, for receivers that are not dcsend (a browser, a Pion example)')
            [CompletionResult]::new('--compress', '--compress', [CompletionResultType]::ParameterName, 'Compress each message with zstd when that makes it at least 1/16 smaller (text, logs, source trees); a receiver that does not take compressed data gets it as it is')
            [CompletionResult]::new('--offer', '--offer', [CompletionResultType]::ParameterName, 'Make the offer (the sender''s default)')
            [CompletionResult]::new('--answer', '--answer', [CompletionResultType]::ParameterName, 'Wait for the peer''s offer and answer it (the receiver''s default)')
            [CompletionResult]::new('--long-token', '--long-token', [CompletionResultType]::ParameterName, 'Print our token in Pion''s long form, for a peer that is not dcsend')
            [CompletionResult]::new('--relay-only', '--relay-only', [CompletionResultType]::ParameterName, 'Use only TURN-relayed candidates')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dcsend;recv' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write to this file, or into this folder when it ends with "/" or is a folder')
            [CompletionResult]::new('--output-path', '--output-path', [CompletionResultType]::ParameterName, 'Write to this file, or into this folder when it ends with "/" or is a folder')
            [CompletionResult]::new('--peer', '--peer', [CompletionResultType]::ParameterName, 'Connect through a signaling server (`dcsend signal`) instead of copy-paste')
            [CompletionResult]::new('--qr', '--qr', [CompletionResultType]::ParameterName, 'With --peer: show the page URL as a QR code, for a phone''s browser')
            [CompletionResult]::new('--join-timeout', '--join-timeout', [CompletionResultType]::ParameterName, 'With --peer: how long to wait for the other side to join the room')
            [CompletionResult]::new('--sdp-out', '--sdp-out', [CompletionResultType]::ParameterName, 'Write our token to PATH (atomically; a FIFO is written directly) instead of stderr')
            [CompletionResult]::new('--sdp-in', '--sdp-in', [CompletionResultType]::ParameterName, 'Read the peer''s token from PATH ("-" = stdin) instead of the terminal')
            [CompletionResult]::new('--stun', '--stun', [CompletionResultType]::ParameterName, 'STUN server, e.g. stun:stun.example.org:3478 (repeatable)')
            [CompletionResult]::new('--turn', '--turn', [CompletionResultType]::ParameterName, 'TURN server, e.g. turn:turn.example.org:3478 (repeatable)')
            [CompletionResult]::new('--turn-user', '--turn-user', [CompletionResultType]::ParameterName, 'TURN user name')
            [CompletionResult]::new('--turn-password-file', '--turn-password-file', [CompletionResultType]::ParameterName, 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up if the channel is not open this long after the peer''s token arrived; also bounds the wait for --sdp-in PATH to appear')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Local UDP address to bind (repeatable) [default: 0.0.0.0:0, every interface]')
            [CompletionResult]::new('--socket-buffer', '--socket-buffer', [CompletionResultType]::ParameterName, 'Kernel buffer to ask for on each UDP socket [default: 16MiB]')
            [CompletionResult]::new('--liveness-timeout', '--liveness-timeout', [CompletionResultType]::ParameterName, 'Declare the peer gone after this much silence once connected')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'When to show the live view on stderr')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Write progress and a final summary as NDJSON to PATH ("-" = stderr)')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Overwrite existing files')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Overwrite existing files')
            [CompletionResult]::new('--resume', '--resume', [CompletionResultType]::ParameterName, 'Continue a broken transfer from the NAME.part it left (needs -o)')
            [CompletionResult]::new('--sink', '--sink', [CompletionResultType]::ParameterName, 'Verify what arrives, then discard it (nothing is written): for measuring a path')
            [CompletionResult]::new('--offer', '--offer', [CompletionResultType]::ParameterName, 'Make the offer (the sender''s default)')
            [CompletionResult]::new('--answer', '--answer', [CompletionResultType]::ParameterName, 'Wait for the peer''s offer and answer it (the receiver''s default)')
            [CompletionResult]::new('--long-token', '--long-token', [CompletionResultType]::ParameterName, 'Print our token in Pion''s long form, for a peer that is not dcsend')
            [CompletionResult]::new('--relay-only', '--relay-only', [CompletionResultType]::ParameterName, 'Use only TURN-relayed candidates')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dcsend;bench' {
            [CompletionResult]::new('--threshold', '--threshold', [CompletionResultType]::ParameterName, 'Low-water thresholds to sweep, comma-separated: sizes, or "auto" for the adaptive mode')
            [CompletionResult]::new('--max-buffer', '--max-buffer', [CompletionResultType]::ParameterName, 'Memory bound of the "auto" threshold [default: 32MiB]')
            [CompletionResult]::new('--chunk-size', '--chunk-size', [CompletionResultType]::ParameterName, 'Message sizes to sweep, comma-separated')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Bytes to send in each run')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'End each run after this long, even if --size is not reached')
            [CompletionResult]::new('--runs', '--runs', [CompletionResultType]::ParameterName, 'Measured runs per case')
            [CompletionResult]::new('--warmup', '--warmup', [CompletionResultType]::ParameterName, 'Unmeasured runs before the measured ones, per case')
            [CompletionResult]::new('--baseline', '--baseline', [CompletionResultType]::ParameterName, 'Also move the same bytes over a loopback TCP socket and report each case as a ratio of it')
            [CompletionResult]::new('--export-json', '--export-json', [CompletionResultType]::ParameterName, 'Write the results as JSON to PATH ("-" = stdout)')
            [CompletionResult]::new('--export-csv', '--export-csv', [CompletionResultType]::ParameterName, 'Write the results as CSV (one row per case, with a header) to PATH ("-" = stdout)')
            [CompletionResult]::new('--export-markdown', '--export-markdown', [CompletionResultType]::ParameterName, 'Write the results as a Markdown table to PATH ("-" = stdout)')
            [CompletionResult]::new('--socket-buffer', '--socket-buffer', [CompletionResultType]::ParameterName, 'Kernel buffer to ask for on each UDP socket [default: 16MiB]')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'When to show the live view on stderr')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dcsend;signal' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on (port 0 = any free port)')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'Keep rooms in Redis (redis://HOST:PORT/DB) instead of this process''s memory')
            [CompletionResult]::new('--stun', '--stun', [CompletionResultType]::ParameterName, 'Also answer STUN Binding requests on this UDP address (repeatable)')
            [CompletionResult]::new('--stun-url', '--stun-url', [CompletionResultType]::ParameterName, 'The STUN server handed to peers, instead of this server''s own --stun (repeatable)')
            [CompletionResult]::new('--turn', '--turn', [CompletionResultType]::ParameterName, 'A TURN server handed to peers with short-lived credentials (repeatable)')
            [CompletionResult]::new('--turn-secret-file', '--turn-secret-file', [CompletionResultType]::ParameterName, 'File holding the TURN servers'' shared secret (coturn''s static-auth-secret)')
            [CompletionResult]::new('--turn-ttl', '--turn-ttl', [CompletionResultType]::ParameterName, 'How long the TURN credentials of a join answer are valid')
            [CompletionResult]::new('--room-ttl', '--room-ttl', [CompletionResultType]::ParameterName, 'A room with no request from either peer for this long expires')
            [CompletionResult]::new('--max-rooms', '--max-rooms', [CompletionResultType]::ParameterName, 'Rooms open at once, over all clients')
            [CompletionResult]::new('--max-rooms-per-client', '--max-rooms-per-client', [CompletionResultType]::ParameterName, 'Rooms open at once that one client network created')
            [CompletionResult]::new('--claim-timeout', '--claim-timeout', [CompletionResultType]::ParameterName, 'A peer that sends no message this long after joining loses its seat')
            [CompletionResult]::new('--presence-timeout', '--presence-timeout', [CompletionResultType]::ParameterName, 'A peer with no request open and none for this long has left: its seat is freed')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Connections open at once, over all clients')
            [CompletionResult]::new('--max-connections-per-client', '--max-connections-per-client', [CompletionResultType]::ParameterName, 'Connections open at once from one client network (see --max-rooms-per-client)')
            [CompletionResult]::new('--header-timeout', '--header-timeout', [CompletionResultType]::ParameterName, 'A request''s head must arrive within this (and a kept-alive connection''s next request)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'A connection with no request being handled for this long is closed')
            [CompletionResult]::new('--client-prefix-v4', '--client-prefix-v4', [CompletionResultType]::ParameterName, 'Bits of an IPv4 address that name the client''s network (0-32)')
            [CompletionResult]::new('--client-prefix-v6', '--client-prefix-v6', [CompletionResultType]::ParameterName, 'Bits of an IPv6 address that name the client''s network (0-128)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log lines as text or as JSON objects (one per line), on stderr')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Log less (warnings and errors only)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Log less (warnings and errors only)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace). RUST_LOG also works')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace). RUST_LOG also works')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dcsend;doctor' {
            [CompletionResult]::new('--stun', '--stun', [CompletionResultType]::ParameterName, 'STUN server to ask for this machine''s public address (repeatable)')
            [CompletionResult]::new('--turn', '--turn', [CompletionResultType]::ParameterName, 'TURN server to ask for an allocation (repeatable); credentials as for sending')
            [CompletionResult]::new('--turn-user', '--turn-user', [CompletionResultType]::ParameterName, 'TURN user name')
            [CompletionResult]::new('--turn-password-file', '--turn-password-file', [CompletionResultType]::ParameterName, 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)')
            [CompletionResult]::new('--peer', '--peer', [CompletionResultType]::ParameterName, 'Check the STUN and TURN servers a signaling server hands out, e.g. https://signal.example.org/')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Local UDP address to probe from [default: 0.0.0.0:0]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the findings as one JSON object on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dcsend;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dcsend;man' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dcsend;help' {
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send files or stdin (the default action)')
            [CompletionResult]::new('recv', 'recv', [CompletionResultType]::ParameterValue, 'Receive into stdout, a file or a folder')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure throughput over a loopback pair for a sweep of thresholds and message sizes')
            [CompletionResult]::new('signal', 'signal', [CompletionResultType]::ParameterValue, 'Run the signaling server that `--peer URL` connects through')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check what this machine''s network allows: public address, NAT type, TURN')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages (dcsend.1 and one per subcommand) into a folder')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dcsend;help;send' {
            break
        }
        'dcsend;help;recv' {
            break
        }
        'dcsend;help;bench' {
            break
        }
        'dcsend;help;signal' {
            break
        }
        'dcsend;help;doctor' {
            break
        }
        'dcsend;help;completions' {
            break
        }
        'dcsend;help;man' {
            break
        }
        'dcsend;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
