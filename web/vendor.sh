#!/usr/bin/env bash
# Refreshes the browser libraries committed under server/static from the versions pinned in
# package.json / package-lock.json. Run it after changing a pin; the pages have no build step and
# the app never fetches anything from a CDN. The sha384 sums printed at the end are what unpkg
# serves for the same files (Strawberry's own GraphiQL page pins the same ones).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error

N=node_modules
GQ=../server/static/graphiql/vendor
WS=../server/static/dashboard/vendor
rm -rf "$GQ" "$WS"

put() {  # put DEST-DIR FILE...
  local dest=$1; shift
  mkdir -p "$dest"
  cp "$@" "$dest/"
}

version() { node -p "require('./$N/$1/package.json').version"; }

put "$GQ/react@$(version react)" $N/react/umd/react.production.min.js $N/react/LICENSE
put "$GQ/react-dom@$(version react-dom)" \
  $N/react-dom/umd/react-dom.production.min.js $N/react-dom/LICENSE
put "$GQ/graphiql@$(version graphiql)" \
  $N/graphiql/graphiql.min.js $N/graphiql/graphiql.min.css $N/graphiql/LICENSE

# The explorer plugin ships without a LICENSE file: its repository's (the graphiql monorepo's,
# the same text as graphiql's) and that of graphiql-explorer, which its UMD build bundles.
explorer="$GQ/plugin-explorer@$(version @graphiql/plugin-explorer)"
put "$explorer" $N/@graphiql/plugin-explorer/dist/index.umd.js \
  $N/@graphiql/plugin-explorer/dist/style.css
bundled=$N/@graphiql/plugin-explorer/node_modules/graphiql-explorer
{
  echo "@graphiql/plugin-explorer $(version @graphiql/plugin-explorer) is published under the MIT license (package.json \"license\": \"MIT\")"
  echo "without a LICENSE file of its own. Its repository, https://github.com/graphql/graphiql,"
  echo "carries this license:"
  echo
  cat $N/graphiql/LICENSE
  echo
  echo "----------------------------------------------------------------------"
  echo "index.umd.js bundles graphiql-explorer $(node -p "require('./$bundled/package.json').version"), whose LICENSE reads:"
  echo
  cat $bundled/LICENSE
} >"$explorer/LICENSE"

# graphql-ws's browser client is two plain ES modules (client.js imports its common chunk).
common=$(sed -n "s/^import .* from '\.\/\(common-[A-Za-z0-9_-]*\.js\)';$/\1/p" $N/graphql-ws/dist/client.js)
put "$WS/graphql-ws@$(version graphql-ws)" \
  $N/graphql-ws/dist/client.js "$N/graphql-ws/dist/$common" $N/graphql-ws/LICENSE.md

cd ../server/static
find graphiql/vendor dashboard/vendor -name '*.js' -o -name '*.css' | sort | while read -r f; do
  printf '%-60s %8s  sha384-%s\n' "$f" "$(wc -c <"$f")" "$(openssl dgst -sha384 -binary "$f" | base64 -w0)"
done
echo "Update the file names (and integrity attributes) in graphiql/index.html and dashboard/*.js"
echo "if a version changed."
