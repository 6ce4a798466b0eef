// GraphiQL for workflow-runs: queries and mutations over POST /graphql, subscriptions over
// graphql-transport-ws at the same URL. GraphiQL's fetcher sends the Headers pane as the
// connection_init payload, so {"Authorization": "Bearer <JWT>"} authenticates both.
(function () {
  "use strict";

  var TOKEN_KEY = "workflow-runs-token"; // the dashboard's, in this tab's sessionStorage

  function claimsOf(token) {
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    } catch (e) {
      return null;
    }
  }

  function storedToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch (e) {
      return null;
    }
  }

  // The token the user gave the dashboard in this tab, else the server's dev-mode token.
  var token = storedToken() || (window.WORKFLOW_RUNS || {}).token || null;
  var workspaces = (token && (claimsOf(token) || {}).workspaces) || [];
  var workspace = workspaces[0] || "your-workspace";

  var pageUrl = location.origin + location.pathname;
  var wsUrl = pageUrl.replace(/^http/, "ws");

  var DEFAULT_QUERY = [
    "# workflow-runs GraphiQL",
    "#",
    "# The Headers pane (below) authenticates everything:",
    '#   {"Authorization": "Bearer <JWT>"}',
    "# queries and mutations over HTTP, subscriptions over",
    "# WebSocket (graphql-transport-ws), e.g.",
    "#   subscription {",
    '#     workflowRunStatusChanged(workspaceId: "' + workspace + '") {',
    "#       cursor runId status",
    "#     }",
    "#   }",
    "#",
    "# Run with Ctrl-Enter or the play button.",
    "",
    "query NewestRuns {",
    '  workflowRunStatusCounts(workspaceId: "' + workspace + '") { status count }',
    '  workflowRuns(workspaceId: "' + workspace + '", first: 10) {',
    "    totalCount",
    "    nodes { id subjectId status triggeredBy createdAt durationMs }",
    "  }",
    "}",
    "",
  ].join("\n");

  function headersText(value) {
    return JSON.stringify({ Authorization: "Bearer " + value }, null, 2);
  }

  function authorizationIn(text) {
    try {
      var parsed = JSON.parse(text || "{}");
      return (parsed && (parsed.Authorization || parsed.authorization)) || "";
    } catch (e) {
      return null; // half-typed JSON: keep the last good value
    }
  }

  // Shareable links: ?q=<query>&variables=<json>, like Strawberry's page. (`?query=` would make
  // GET /graphql execute the query instead of serving this page.) Never the headers: they hold
  // the token.
  var params = new URLSearchParams(location.search);

  function updateUrl(key, value) {
    if (value) params.set(key, value);
    else params.delete(key);
    var search = params.toString();
    history.replaceState(null, "", location.pathname + (search ? "?" + search : ""));
  }

  var shared = params.get("q");
  var initialHeaders = headersText(token || "");
  var h = React.createElement;

  function App() {
    var state = React.useState(initialHeaders);
    var headers = state[0];
    var setHeaders = state[1];
    var authState = React.useState(authorizationIn(initialHeaders));
    var authorization = authState[0];
    var setAuthorization = authState[1];

    // A new fetcher when the Authorization header changes: GraphiQL then fetches the schema
    // again with it (introspection needs a token here, like every request).
    var fetcher = React.useMemo(
      function () {
        return GraphiQL.createFetcher({ url: pageUrl, subscriptionUrl: wsUrl });
      },
      [authorization],
    );

    var timer = React.useRef(null);
    function onEditHeaders(text) {
      setHeaders(text);
      clearTimeout(timer.current);
      timer.current = setTimeout(function () {
        var value = authorizationIn(text);
        if (value !== null) setAuthorization(value);
      }, 500);
    }

    var explorer = React.useMemo(function () {
      return GraphiQLPluginExplorer.explorerPlugin();
    }, []);

    var props = {
      fetcher: fetcher,
      plugins: [explorer],
      defaultQuery: DEFAULT_QUERY,
      headers: headers,
      onEditHeaders: onEditHeaders,
      onEditQuery: function (text) {
        updateUrl("q", text === DEFAULT_QUERY ? "" : text);
      },
      onEditVariables: function (text) {
        updateUrl("variables", text);
      },
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      // Tokens stay out of localStorage.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    };
    if (shared) {
      // A shared link opens its query (in a new tab when others are stored).
      props.query = shared;
      props.variables = params.get("variables") || undefined;
    } else {
      // First visit: an example for the token's workspace. Later visits restore their tabs.
      props.defaultTabs = [{ query: DEFAULT_QUERY, headers: initialHeaders }];
    }
    return h(GraphiQL, props);
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(h(App));
})();
