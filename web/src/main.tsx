import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';
import { live } from './store';
import { colormap } from './lib/heatmap';

// test and benchmark hooks (read-only views of the live state, plus the pause switch)
Object.assign(((window as unknown as { __qs?: Record<string, unknown> }).__qs ??= {}), { live, colormap });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

// PWA: the service worker caches the app shell only (never market data)
if ('serviceWorker' in navigator && import.meta.env.PROD && !new URLSearchParams(location.search).has('nosw')) {
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js').catch(() => {});
  });
}
