"""libtorrent (Debian's python3-libtorrent, for /usr/bin/python3) for the v2 interop tests.

  create <path> <out.torrent> v2|hybrid <piece length>   make a torrent of a file or folder
  seed <file.torrent> <dir>                               seed it; prints {"port": N} once listening
  download <file.torrent|magnet> <dir> <host:port>|-      fetch it from that peer (-: wait for peers to dial us,
                                                          printing {"port": N} first); prints {"done": true,
                                                          "hashes": N, "rejects": N, "v2": bool} once every
                                                          piece is verified, with the hashes and hash reject
                                                          messages it received and whether the peer's
                                                          handshake had the v2 bit (reserved byte 7, 0x10)
  upload-only <file.torrent> <dir> <host:port>            download from that peer until the connection closes;
                                                          prints {"closed": why}, libtorrent's reason (it hangs up
                                                          on an upload-only peer, BEP 21, once that has nothing
                                                          more it wants: "uninteresting upload-only peer")

Loopback only: listens on 127.0.0.1, no DHT, LSD, UPnP or NAT-PMP. Every wait is bounded (60 s).
"""
import json
import os
import sys
import time

import libtorrent as lt


def session(peer_log=False):
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
        | (lt.alert.category_t.peer_log_notification if peer_log else 0),
        "in_enc_policy": 2,
        "out_enc_policy": 2,
    })


def say(value):
    print(json.dumps(value), flush=True)


def create(path, out, kind, piece_length):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    flags = lt.create_torrent.v2_only if kind == "v2" else 0
    t = lt.create_torrent(fs, int(piece_length), flags=flags)
    lt.set_piece_hashes(t, os.path.dirname(os.path.abspath(path)))
    with open(out, "wb") as f:
        f.write(lt.bencode(t.generate()))


def add(ses, torrent, directory):
    if torrent.startswith("magnet:"):
        params = lt.parse_magnet_uri(torrent)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(torrent)
    params.save_path = directory
    return ses.add_torrent(params)


def seed(torrent, directory):
    ses = session()
    handle = add(ses, torrent, directory)
    deadline = time.time() + 60
    while not handle.status().is_seeding:
        if time.time() > deadline:
            sys.exit("libtorrent did not verify its data in 60 s")
        time.sleep(0.05)
    say({"port": ses.listen_port()})
    # Seeds until killed.
    while True:
        time.sleep(1)


def download(torrent, directory, peer):
    ses = session(peer_log=True)
    handle = add(ses, torrent, directory)
    deadline = time.time() + 60
    if peer == "-":
        say({"port": ses.listen_port()})
    else:
        host, port = peer.rsplit(":", 1)
        handle.connect_peer((host, int(port)))
    counts = {"hashes": 0, "rejects": 0, "v2": False}

    def drain():
        for alert in ses.pop_alerts():
            message = alert.message()
            if "<== HASHES " in message:
                counts["hashes"] += 1
            elif "<== HASH_REJECT " in message:
                counts["rejects"] += 1
            elif "<== EXTENSIONS [ " in message:
                # The 64 reserved bits, byte 0 first: byte 7's 0x10 is the 60th.
                bits = message.split("<== EXTENSIONS [ ", 1)[1]
                counts["v2"] = counts["v2"] or bits[59] == "1"
            if os.environ.get("LT_DEBUG") or not isinstance(alert, lt.peer_log_alert):
                print(message, file=sys.stderr, flush=True)

    while not handle.status().is_seeding:
        if time.time() > deadline:
            say({"done": False, "progress": handle.status().progress, **counts})
            sys.exit(1)
        drain()
        time.sleep(0.05)
    drain()
    say({"done": True, **counts})


def upload_only(torrent, directory, peer):
    ses = session()
    ses.apply_settings({"alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.connect_notification})
    # Over TCP at once: a uTP try first waits out its timeout against a peer without uTP.
    ses.apply_settings({"enable_outgoing_utp": False})
    handle = add(ses, torrent, directory)
    host, port = peer.rsplit(":", 1)
    handle.connect_peer((host, int(port)))
    deadline = time.time() + 60
    closed = None
    # The reason, not peer_info's flags: on loopback the connection can close between two looks at them.
    while closed is None and time.time() < deadline:
        ses.wait_for_alert(100)
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.peer_disconnected_alert) and alert.ip == (host, int(port)):
                closed = alert.error.message()
    say({"closed": closed})


if __name__ == "__main__":
    {"create": create, "seed": seed, "download": download, "upload-only": upload_only}[sys.argv[1]](*sys.argv[2:])
