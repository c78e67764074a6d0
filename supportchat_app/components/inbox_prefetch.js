// The sidebar lists' first rows, held ahead of a click (components/inbox_prefetch.py): an invisible element that
// keeps them in window.scInboxPrefetch (entry key -> rows) for the list component (inbox_list.js) to draw the
// moment an entry is clicked, before the server's answer arrives.
export default {
  template: `<span style="display: none" aria-hidden="true"></span>`,
  props: { lists: { type: Array, default: () => [] } },
  watch: {
    lists: {
      handler(pairs) {
        window.scInboxPrefetch = Object.fromEntries(pairs);
      },
      immediate: true,
    },
  },
  unmounted() {
    window.scInboxPrefetch = {};
  },
};
