// Hash routes: #/groups, #/g/<group>/<tab>[/<id>], #/login.
/** The route in the URL's hash: #/groups, #/g/<group>/<tab>[/<id>], #/login. */
export function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "g" && parts[1]) return { page: "group", group: parts[1], tab: parts[2] || "analytics", id: parts[3] };
  if (parts[0] === "login") return { page: "login" };
  return { page: "overview" };
}

export const href = {
  overview: () => "#/groups",
  group: (group, tab = "analytics", id) =>
    `#/g/${encodeURIComponent(group)}/${tab}${id ? `/${encodeURIComponent(id)}` : ""}`,
};
