{
  description = "effect-torrent: a BitTorrent client and library built on Effect 4";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in {
      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          # Node >= 22, plus the other BitTorrent implementations the interop tests talk to.
          packages = with pkgs; [ nodejs_22 aria2 transmission_4 mktorrent opentracker tmux curl ffmpeg nginx ];
        };
      });
    };
}
