// tracec show: only textContent and classList, so recorded text never becomes markup.
(function () {
  var svg = document.getElementById('graph'), panel = document.getElementById('details');
  var pinned = null;
  function focus(id) {
    svg.classList.toggle('focus', id !== null);
    svg.querySelectorAll('.edge').forEach(function (e) {
      e.classList.toggle('hl', id !== null && (e.dataset.from === id || e.dataset.to === id));
    });
  }
  function pin(n) {
    if (pinned) pinned.classList.remove('selected');
    pinned = n; n.classList.add('selected'); focus(n.dataset.id);
    panel.textContent = n.querySelector('title').textContent;
    panel.hidden = false;
  }
  svg.querySelectorAll('.node').forEach(function (n) {
    n.addEventListener('mouseenter', function () { if (pinned === null) focus(n.dataset.id); });
    n.addEventListener('mouseleave', function () { if (pinned === null) focus(null); });
    n.addEventListener('click', function (ev) { ev.stopPropagation(); pin(n); });
    n.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') pin(n); });
  });
  document.addEventListener('click', function () {
    if (pinned) pinned.classList.remove('selected');
    pinned = null; focus(null); panel.hidden = true;
  });
  // page.html#node-12 opens with node 12 selected and scrolled into view (links from reports, errors).
  var wanted = /^#node-(\d+)$/.exec(location.hash);
  var target = wanted && svg.querySelector('.node[data-id="' + wanted[1] + '"]');
  if (target) { pin(target); target.scrollIntoView({block: 'center', inline: 'center'}); }
})();
