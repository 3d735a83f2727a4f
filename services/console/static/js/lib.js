// The UI library in one place: Preact with htm tagged templates (no build step).
import { h, render, Fragment } from "preact";
import {
  useCallback,
  useEffect,
  useMemo,
  useRef,
  useState,
} from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);
export { render, Fragment, useCallback, useEffect, useMemo, useRef, useState };
