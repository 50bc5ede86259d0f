(function(){
  function key(td,num){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;
    if(!num)return v.toLowerCase();var f=parseFloat(v);return isNaN(f)?-Infinity:f;}
  function cmp(a,b){return a<b?-1:(a>b?1:0);}
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(t){
    var ths=t.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths,function(th,i){
      th.addEventListener('click',function(){
        var num=th.getAttribute('data-type')==='num';
        var cur=th.getAttribute('aria-sort');
        var dir=cur?(cur==='ascending'?-1:1):(num?-1:1);
        var body=t.tBodies[0];
        var rows=Array.prototype.map.call(body.rows,function(r,j){return [key(r.cells[i],num),j,r];});
        rows.sort(function(a,b){return cmp(a[0],b[0])*dir||a[1]-b[1];});
        rows.forEach(function(x){body.appendChild(x[2]);});
        Array.prototype.forEach.call(ths,function(h){h.removeAttribute('aria-sort');});
        th.setAttribute('aria-sort',dir>0?'ascending':'descending');
      });
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll('input[data-filter]'),function(inp){
    var t=document.getElementById(inp.getAttribute('data-filter'));
    var out=document.getElementById(inp.getAttribute('data-filter')+'-count');
    // A number matches a whole cell (campaign "3" is not "13" or "0.35"); other text
    // matches inside one cell (a prefix of an account id, words of a template).
    function hit(cell,q,whole){var v=cell.textContent.trim().toLowerCase();
      if(whole)return v===q||v.replace(/,/g,'')===q;return v.indexOf(q)>=0;}
    inp.addEventListener('input',function(){
      var q=inp.value.trim().toLowerCase(),n=0,whole=/^[0-9.,]+$/.test(q);
      Array.prototype.forEach.call(t.tBodies[0].rows,function(r){
        var ok=!q||Array.prototype.some.call(r.cells,function(c){return hit(c,q,whole);});
        r.hidden=!ok;if(ok)n++;});
      if(out)out.textContent=n+' shown';
    });
  });
  // A link to an account's evidence opens its chip (and the "+ N more" around it).
  function reveal(){var el=location.hash&&document.getElementById(location.hash.slice(1));
    if(!el)return;for(var p=el;p;p=p.parentElement){if(p.tagName==='DETAILS')p.open=true;}
    el.scrollIntoView({block:'center'});}
  window.addEventListener('hashchange',reveal);reveal();
})();
