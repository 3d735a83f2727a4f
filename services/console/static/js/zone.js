// The group's timezone, as metrics reports it (activity's `timezone`), cached per group.
import { api, getConfig, groupPath } from "./api.js";
import { today } from "./ui.js";
import { useEffect, useState } from "./lib.js";

const known = new Map();

export function rememberZone(groupId, timeZone) {
  if (timeZone) known.set(groupId, timeZone);
}

async function zoneOf(groupId) {
  if (known.has(groupId)) return known.get(groupId);
  const fallback = getConfig().timezone;
  const day = today(fallback);
  try {
    const activity = await api("metrics", `${groupPath(groupId)}/activity`, { query: { from: day, to: day } });
    rememberZone(groupId, activity.timezone);
  } catch {
    rememberZone(groupId, fallback); // metrics has not seen the group yet: the deployment's zone
  }
  return known.get(groupId);
}

/** The group's timezone (null while it is being read). */
export function useZone(groupId) {
  const [zone, setZone] = useState(known.get(groupId) ?? null);
  useEffect(() => {
    let live = true;
    zoneOf(groupId).then((z) => live && setZone(z));
    return () => {
      live = false;
    };
  }, [groupId]);
  return zone;
}
